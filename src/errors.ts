// One template for every rejected argument (DESIGN.md §6):
//   Expected <what was expected> for <argument> but received <what was received>
// TypeError for the wrong kind of value, RangeError for a wrong size or value; each carries a stable
// `code` that programs can switch on.

export type ErrorCode =
  | 'ERR_SHAPE'
  | 'ERR_DTYPE'
  | 'ERR_TYPE'
  | 'ERR_LABEL'
  | 'ERR_TARGET'
  | 'ERR_NON_FINITE'
  | 'ERR_OPTION'
  | 'ERR_STATE'
  | 'ERR_TOO_LARGE'
  | 'ERR_ABORTED'
  | 'ERR_DIVERGED'
  | 'ERR_NATIVE';

export interface CodedError extends Error {
  code: ErrorCode;
}

function withCode<E extends Error>(error: E, code: ErrorCode): E & CodedError {
  return Object.assign(error, { code });
}

export function message(argument: string, expected: string, received: string): string {
  return `Expected ${expected} for ${argument} but received ${received}`;
}

export function typeError(code: ErrorCode, argument: string, expected: string, value: unknown): TypeError & CodedError {
  return withCode(new TypeError(message(argument, expected, describe(value))), code);
}

export function rangeError(code: ErrorCode, argument: string, expected: string, received: string): RangeError & CodedError {
  return withCode(new RangeError(message(argument, expected, received)), code);
}

export function codedError(code: ErrorCode, text: string): Error & CodedError {
  return withCode(new Error(text), code);
}

/** A short, readable description of any value, for the "received" part of a message. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return `the number ${Object.is(value, -0) ? '-0' : String(value)}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (typeof value === 'bigint') return `the bigint ${value}n`;
  if (typeof value === 'boolean' || typeof value === 'symbol') return `the ${typeof value} ${String(value)}`;
  if (typeof value === 'function') return 'a function';
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor.name;
    const length = 'length' in value ? (value as { length: number }).length : value.byteLength;
    return `a ${name} of length ${length}${value.buffer.byteLength === 0 && value.byteLength === 0 ? ' (its buffer may be detached)' : ''}`;
  }
  if (Array.isArray(value)) return `an Array of length ${value.length}`;
  const name = (value as object).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}

/**
 * Gives an async call's rejection the stack of the call that started it: the native work finishes
 * on another thread, so the error made at completion would otherwise show only internal frames.
 */
export function withCallerStack<E extends Error>(error: E, caller: Error): E {
  const callerFrames = (caller.stack ?? '').split('\n').slice(1).join('\n');
  if (callerFrames) error.stack = `${error.name}: ${error.message}\n${callerFrames}`;
  return error;
}
