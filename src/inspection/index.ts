/**
 * Live inspection: what the page and Stately's tools see of the running actors.
 *
 * Owns: serializing actor events into Stately's format (serialize.ts), the live stream with its
 * replay buffer and live-actor list (stream.ts), the chart shape of a machine for the page
 * (chart.ts), and recordings of a stream that the page can replay (recording.ts).
 *
 * May import: xstate, @statelyai/inspect, safe-stable-stringify and ../log.ts — it reads any
 * machine through XState's public API and needs none of ours. Machines never import inspection
 * (they are inspected from outside, through `createActor`'s `inspect` option); server/ imports it
 * to serve the page and the WebSocket; service.ts wires it to the actor system.
 */
export { createInspection, type Inspection, type InspectionOptions, type LiveActor } from './stream.ts';
export { toInspectable } from './serialize.ts';
export { describeMachine, INLINE_GUARD, type MachineShape, type StateShape, type TransitionShape } from './chart.ts';
export { recordInspection, type InspectionRecorder } from './recording.ts';
