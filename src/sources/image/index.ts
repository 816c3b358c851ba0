/** The image job: block devices and disk image files as fixed-size blocks. */
export {
  backupImage,
  checkBlockSize,
  checkNotMountedWritable,
  DEFAULT_IMAGE_BLOCK_SIZE,
  type ImageBackupOptions,
  type ImageBackupResult,
  type ImageBackupSpec,
  type ImageProgress,
} from './imageBackup.js';
export { restoreImage, type ImageRestoreOptions, type ImageRestoreResult } from './imageRestore.js';
export { compareImageFingerprints, findImageNode, type ImageFingerprint } from './imageNode.js';
export { ImageRefusedError } from './imageErrors.js';
export { mountsOfImage, type DeviceMount } from './blockDevices.js';
