export * from './client.ts';
export * from './errors.ts';
export * from './host.ts';
export * from './values.ts';
export * from './sosyncJobFields.ts';
export * from './protocolCopier.ts';
