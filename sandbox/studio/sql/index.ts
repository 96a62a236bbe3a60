export {
  createStudioEngine,
  type StudioEngine, type StudioEngineOptions, type StudioUser, type StatementFailure,
} from './engine.ts';
export type { StudioDatabase } from './backend.ts';
export type { Announcement } from './announcer.ts';
