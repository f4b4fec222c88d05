import { formatProblem, type Problem } from './problems.js';

/** Stable machine codes of every error Steward reports. */
export type ErrorCode =
  'validation' | 'not_found' | 'conflict' | 'permission' | 'integrity' | 'configuration';

/** Base of the closed error hierarchy; `exitCode` is what the CLI exits with. */
export abstract class StewardError extends Error {
  abstract readonly code: ErrorCode;
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
  /** JSON shape printed by `--json` and (later) the API. */
  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message };
  }
}

/** Input that does not meet the contract; lists every problem found. */
export class ValidationError extends StewardError {
  readonly code = 'validation';
  readonly problems: Problem[];
  constructor(message: string, problems: Problem[] = [], options?: { cause?: unknown }) {
    const body = problems.length
      ? `${message}\n${problems.map((p) => '  ' + formatProblem(p)).join('\n')}`
      : message;
    super(body, options);
    this.problems = problems;
  }
  override toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message.split('\n')[0], problems: this.problems };
  }
}

export class NotFoundError extends StewardError {
  readonly code = 'not_found';
}

export class ConflictError extends StewardError {
  readonly code = 'conflict';
}

export class PermissionError extends StewardError {
  readonly code = 'permission';
}

export class ConfigurationError extends StewardError {
  readonly code = 'configuration';
}

/** The evidence does not hold: a tampered ledger, a bad signature. Exit code 2. */
export class IntegrityError extends StewardError {
  readonly code = 'integrity';
  override readonly exitCode: number = 2;
}
