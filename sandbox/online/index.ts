export { startOnlineStandIn, type OnlineStandIn, type OnlineStandInOptions, type OnlineFaults, type ModelCall, type RawAnswer } from './standIn.ts';
export { OnlineStore, odooNow, type Row, type StoreSearchOptions } from './store.ts';
export { seedOnline, type SeedOptions, type SeededOnline } from './seed.ts';
export { modelDefs, type ModelDef, type FieldDef } from './models.ts';
export type { Announcement, AnnouncementOutcome } from './announcer.ts';
export { isoCountries } from './countries.ts';
