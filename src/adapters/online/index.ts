/**
 * FSO (Fundraising Studio Online, Odoo over XML-RPC): the client, its errors, the online_host
 * forms and the value conversions. Imports only src/adapters/hostPort.ts and src/log.ts.
 */
export * from './client.ts';
export * from './errors.ts';
export * from './host.ts';
export * from './values.ts';
export * from './sosyncJobFields.ts';
export * from './protocolCopier.ts';
