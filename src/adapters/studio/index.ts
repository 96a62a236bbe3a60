/**
 * FS (Fundraising Studio, SQL Server through mssql). This folder owns every statement sosync sends
 * to FS and FS's fixed ids; it imports only from src/adapters (hostPort.ts) and src/log.ts.
 *
 *   client.ts           createStudioClient: the parts below behind one StudioClient
 *   connection.ts       pool, parameters, transactions, error classification
 *   tables.ts           the FS tables sosync writes, with typed columns
 *   tableAccess.ts      insert / update / delete / read by id of any declared table
 *   personStackRead.ts  the current rows of one person (SPEC 6.2)
 *   personStackWrite.ts the rules for writing and deleting a person stack
 *   lookups.ts          Typen defaults, country functions, FS's clock
 *   fsIds.ts            FS type, group and Typen ids by name
 *   host.ts             the studio_mssql_host forms
 */
export { createStudioClient, type StudioClient, type StudioClientOptions } from './client.ts';
export { completeStack, composePhoneNumber, currentRows, type StackParts, type StackRow } from './personStackRead.ts';
export type { TableAccessor } from './tableAccess.ts';
export { StudioError, StudioInputError, StudioQueryError, StudioUnavailableError } from './errors.ts';
export { parseStudioHost, defaultStudioPort, type StudioAddress } from './host.ts';
export * from './fsIds.ts';
export * from './types.ts';
