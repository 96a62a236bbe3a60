export { createStudioClient, composePhoneNumber, type StudioClient, type StudioClientOptions } from './client.ts';
export { StudioError, StudioInputError, StudioQueryError, StudioUnavailableError } from './errors.ts';
export { parseStudioHost, defaultStudioPort, type StudioAddress } from './host.ts';
export * from './types.ts';
