import type { Keys } from '../ledger/keys.js';
import type { Problem } from '../domain/problems.js';
import type { DiscoveryBatch } from '../inventory/import-discovery.js';

/** How a source importer reads its inputs. */
export interface ReadOptions {
  /** Skip and count bad records instead of rejecting the whole input. */
  skipInvalid: boolean;
  /** Keyed fingerprints for any secret value seen (the value itself is never kept). */
  keys: Pick<Keys, 'fingerprint'>;
  /** Inputs larger than this many bytes are refused (default 4 GiB). */
  maxBytes?: number;
  /** Read a git repository's every commit instead of its files (`--history`; sources that scan repositories). */
  history?: boolean;
}

/** What a source importer produced: the batch and what it skipped. */
export interface ReadResult {
  batch: DiscoveryBatch;
  /** Records skipped with `--skip-invalid`, each with where and why. */
  skipped: Problem[];
  /** What the person running the import should know about the read (e.g. files scanned and passed over). */
  notes?: string[];
}

/**
 * One discovery source: reads real exports (files, folders, `-` for stdin) into a batch
 * for the one write path (`importDiscovery`). A bad record throws a `ValidationError`
 * naming the file and line or JSON path, unless `skipInvalid` is set.
 */
export interface SourceImporter {
  source: string;
  description: string;
  read(paths: string[], options: ReadOptions): Promise<ReadResult>;
}
