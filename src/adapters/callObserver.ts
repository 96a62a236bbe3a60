/**
 * Timing of the calls sosync makes to FS and FSO, without touching each call: a client object is
 * wrapped so that every method returning a promise reports its duration and outcome to one hook.
 */

export interface ObservedCall {
  system: 'fs' | 'fso';
  /** the client method, e.g. readPersonStack or searchRead */
  operation: string;
  seconds: number;
  /** the error's class name when the call failed */
  error?: string;
}

export type CallObserver = (call: ObservedCall) => void;

/** The same client, reporting each asynchronous method call to `observe`. */
export function observeCalls<T extends object>(client: T, system: ObservedCall['system'], observe: CallObserver): T {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(client, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      let wrapper = wrapped.get(property);
      if (!wrapper) {
        wrapper = function (this: unknown, ...args: unknown[]) {
          const started = performance.now();
          const result = (value as (...a: unknown[]) => unknown).apply(target, args);
          if (!(result instanceof Promise)) return result;
          const report = (error?: unknown) => observe({
            system,
            operation: property,
            seconds: (performance.now() - started) / 1000,
            ...(error === undefined ? {} : { error: error instanceof Error ? error.name : 'Error' }),
          });
          return result.then(
            (v) => { report(); return v; },
            (err) => { report(err ?? 'Error'); throw err; },
          );
        };
        wrapped.set(property, wrapper);
      }
      return wrapper;
    },
  });
}
