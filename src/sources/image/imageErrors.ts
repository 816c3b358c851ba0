/**
 * Refusals of the image job: the request is understood but would produce an
 * inconsistent image or destroy something in use. They map to the usage exit
 * code (2) because the person has to change what they asked for.
 */
import { ExitCode, LifeboatError, type LifeboatErrorOptions } from '../../errors.js';

export class ImageRefusedError extends LifeboatError {
  constructor(code: string, message: string, opts?: LifeboatErrorOptions) {
    super(code, ExitCode.usage, message, opts);
  }
}
