/** Scratch environments for restore drills: each created ready to use and always disposed. */
export type { ScratchDatabaseServer, ScratchEnvironment, ScratchKind, ScratchResource } from './types.js';
export { DirectoryScratch, type DirectoryScratchOptions } from './directoryScratch.js';
export {
  EphemeralPostgres,
  postgresServerBinDirs,
  DRILL_SUPERUSER,
  type EphemeralPostgresOptions,
} from './ephemeralPostgres.js';
export { EphemeralMariadb, findMariadbPrograms, type EphemeralMariadbOptions } from './ephemeralMariadb.js';
export {
  ScratchPostgresDatabase,
  ScratchMysqlDatabase,
  dropPostgresScratchDatabase,
  dropMysqlScratchDatabase,
  scratchDatabaseName,
  type ScratchDatabaseOptions,
} from './scratchDatabase.js';
export { LoopImageScratch, type FsckResult, type LoopImageOptions } from './loopImage.js';
export {
  listScratchRecords,
  scratchStateDir,
  ScratchTracker,
  type FoundScratchRecord,
  type ScratchRecord,
} from './scratchState.js';
export {
  releaseAll,
  describeResource,
  loopDevicesOf,
  isMountPoint,
  SCRATCH_DIR_PREFIX,
  type ReleaseContext,
} from './releaseResource.js';
export { processesMentioning } from './processes.js';
export type { PgConnectConfig } from './pgQuery.js';
export type { MysqlConnectConfig } from './mysqlQuery.js';
