import type { Db } from '../store/store.js';
import type { PrincipalsTable } from '../store/schema.js';

export const PRINCIPAL_REF = /^(person|team):(\S+)$/;

/** Resolves the ways people and teams are named (id, email, directory id, team name) to canonical refs. */
export class PrincipalIndex {
  private readonly byId = new Map<string, PrincipalsTable>();
  private readonly personByKey = new Map<string, string>();
  private readonly teamByKey = new Map<string, string>();

  static async load(db: Db): Promise<PrincipalIndex> {
    const idx = new PrincipalIndex();
    for (const p of await db.selectFrom('principals').selectAll().execute()) idx.add(p);
    return idx;
  }

  /** Adds or replaces a principal (also used for principals created within one import). */
  add(p: PrincipalsTable): void {
    this.byId.set(p.id, p);
    const keys = p.kind === 'person' ? this.personByKey : this.teamByKey;
    keys.set(p.id.slice(p.id.indexOf(':') + 1).toLowerCase(), p.id);
    if (p.directory_id) keys.set(p.directory_id.toLowerCase(), p.id);
    if (p.email) keys.set(p.email.toLowerCase(), p.id);
    if (p.kind === 'team' && p.name) {
      const k = p.name.toLowerCase();
      if (!keys.has(k)) keys.set(k, p.id);
    }
  }

  get(id: string): PrincipalsTable | undefined {
    return this.byId.get(id);
  }

  /** Canonical ref for `person:<email|id>` or `team:<id|name>`, or undefined when unknown. */
  resolve(ref: string): string | undefined {
    const m = PRINCIPAL_REF.exec(ref);
    if (!m) return undefined;
    const keys = m[1] === 'person' ? this.personByKey : this.teamByKey;
    return keys.get(m[2]!.toLowerCase());
  }

  /** Canonical ref a new principal named `ref` gets. */
  static canonical(ref: string): string {
    const m = PRINCIPAL_REF.exec(ref);
    if (!m) throw new Error(`internal: not a principal ref: ${ref}`);
    return m[1] === 'person' && m[2]!.includes('@') ? `person:${m[2]!.toLowerCase()}` : `${m[1]}:${m[2]}`;
  }
}
