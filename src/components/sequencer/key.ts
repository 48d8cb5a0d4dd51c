/** The request check every sequencer backend shares. */
import { ComponentRequestError } from '../errors.js';

export function checkSequencerKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new ComponentRequestError('key is empty');
  return key;
}
