/**
 * Maps a job's `job_source_model` (either side's model name) to its flow.
 */
import type { Flow } from './flow.ts';

export class FlowRegistry {
  private readonly byModel = new Map<string, Flow>();

  constructor(flows: Iterable<Flow>) {
    for (const flow of flows) {
      for (const model of [flow.models.fs, flow.models.fso]) {
        if (this.byModel.has(model)) throw new Error(`two flows claim the model ${model}`);
        this.byModel.set(model, flow);
      }
    }
  }

  /** The flow of a model name, or undefined. */
  forModel(model: string): Flow | undefined {
    return this.byModel.get(model);
  }

  hasFlow = (model: string): boolean => this.byModel.has(model);

  /** every flow once, in registration order */
  get flows(): Flow[] {
    return [...new Set(this.byModel.values())];
  }

  get models(): string[] {
    return [...this.byModel.keys()].sort();
  }
}
