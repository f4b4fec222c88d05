import { openStore, isPostgresUrl, DEFAULT_DB, type Store } from './store/store.js';
import { createLedger, type Ledger } from './ledger/ledger.js';
import { defaultKeysDir, loadKeys, type Keys } from './ledger/keys.js';
import { createProjector } from './inventory/projector.js';
import type { InventoryDeps } from './inventory/context.js';

export interface StewardOptions {
  /** Path of a SQLite file or a postgres:// URL. */
  db?: string;
  /** Folder of the signing and fingerprint keys. */
  keysDir?: string;
  /** Create keys when the folder has none (what `init` and the first write do). */
  createKeys?: boolean;
  checkpointEvery?: number;
  now?: () => Date;
}

/** An opened Steward: storage, keys and ledger wired together. */
export interface Steward extends InventoryDeps {
  keys: Keys;
  close(): Promise<void>;
}

/** Opens the database (migrating it) and the keys, and wires the ledger with its projector. */
export async function openSteward(options: StewardOptions = {}): Promise<Steward> {
  const db = options.db ?? process.env.STEWARD_DB ?? DEFAULT_DB;
  const keysDir = options.keysDir ?? process.env.STEWARD_KEYS ?? defaultKeysDir(db, isPostgresUrl(db));
  const keys = loadKeys(keysDir, { create: options.createKeys ?? true });
  const store: Store = await openStore(db);
  const now = options.now ?? (() => new Date());
  const ledger: Ledger = createLedger({
    store,
    keys,
    projector: createProjector(store),
    now,
    ...(options.checkpointEvery !== undefined ? { checkpointEvery: options.checkpointEvery } : {}),
  });
  return { store, ledger, keys, now, close: () => store.close() };
}
