import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Dialect } from './store.js';

/**
 * Forward-only migrations shared by both dialects. Never edit a released migration;
 * add a new one with the next timestamped name.
 */
export function migrationsFor(dialect: Dialect): MigrationProvider {
  const migrations: Record<string, Migration> = {
    '2026-11-23T00-system-of-record': {
      // Migrations must not depend on today's schema types (Kysely's documented practice).
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      async up(db: Kysely<any>) {
        const bigint = dialect === 'postgres' ? 'bigint' : 'integer';
        await db.schema
          .createTable('events')
          .addColumn('seq', sql.raw(bigint), (c) => c.primaryKey())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('identity_id', 'text')
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('effective_at', 'text', (c) => c.notNull())
          .addColumn('recorded_at', 'text', (c) => c.notNull())
          .addColumn('prev_hash', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .execute();
        // Two partial indexes split the ledger: events about an identity (and its credentials and
        // entitlements) by identity, all other events by subject. Each query names its half.
        await db.schema
          .createIndex('events_identity')
          .on('events')
          .columns(['identity_id', 'seq'])
          .where(sql.ref('identity_id'), 'is not', null)
          .execute();
        // Identity-scoped events are found through identity_id; only the others (people, teams,
        // services, vendors, import runs) need the subject index.
        await db.schema
          .createIndex('events_subject')
          .on('events')
          .columns(['subject', 'seq'])
          .where(sql.ref('identity_id'), 'is', null)
          .execute();

        await db.schema
          .createTable('ledger_head')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('seq', sql.raw(bigint), (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db
          .insertInto('ledger_head')
          .values({ id: 1, seq: 0, hash: '0'.repeat(64), updated_at: new Date(0).toISOString() })
          .execute();

        await db.schema
          .createTable('checkpoints')
          .addColumn('seq', sql.raw(bigint), (c) => c.primaryKey())
          .addColumn('head_hash', 'text', (c) => c.notNull())
          .addColumn('signed_at', 'text', (c) => c.notNull())
          .addColumn('key_id', 'text', (c) => c.notNull())
          .addColumn('signature', 'text', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('meta')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('principals')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('directory_id', 'text')
          .addColumn('name', 'text')
          .addColumn('email', 'text')
          .addColumn('team', 'text')
          .addColumn('manager', 'text')
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('left_at', 'text')
          .addColumn('updated_seq', sql.raw(bigint), (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('principals_directory_id')
          .on('principals')
          .columns(['kind', 'directory_id'])
          .execute();
        await db.schema.createIndex('principals_email').on('principals').column('email').execute();
        await db.schema.createIndex('principals_team').on('principals').column('team').execute();

        for (const [table, extra] of [
          ['services', ['owner', 'system', 'description']],
          ['vendors', ['contracting_owner', 'contract_ends']],
        ] as const) {
          let t = db.schema
            .createTable(table)
            .addColumn('id', 'text', (c) => c.primaryKey())
            .addColumn('name', 'text', (c) => c.notNull().unique());
          for (const col of extra) t = t.addColumn(col, 'text');
          await t.addColumn('updated_seq', sql.raw(bigint), (c) => c.notNull()).execute();
        }

        let identities = db.schema
          .createTable('identities')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('natural_key', 'text', (c) => c.notNull().unique())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('first_seen', 'text', (c) => c.notNull())
          .addColumn('last_seen', 'text', (c) => c.notNull())
          .addColumn('updated_seq', sql.raw(bigint), (c) => c.notNull());
        for (const col of [
          'kind',
          'source',
          'external_id',
          'environment',
          'sensitivity',
          'service',
          'purpose',
          'labels',
          'business_owner',
          'technical_owner',
          'control_owner',
          'primary_team',
          'shared_with',
          'approver',
          'approved_at',
          'approval_ticket',
          'origin_kind',
          'origin_ref',
          'origin_merged_by',
          'vendor',
          'rotation_max_age',
          'expires_at',
          'revocation_triggers',
          'revocation_owner',
          'revocation_runbook',
          'sponsor',
          'manifest_file',
          'last_used_at',
        ]) {
          identities = identities.addColumn(col, 'text');
        }
        await identities.execute();
        for (const col of [
          'name',
          'external_id',
          'business_owner',
          'technical_owner',
          'control_owner',
          'primary_team',
          'manifest_file',
        ]) {
          await db.schema.createIndex(`identities_${col}`).on('identities').column(col).execute();
        }

        let credentials = db.schema
          .createTable('credentials')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('identity_id', 'text', (c) => c.notNull().references('identities.id'))
          .addColumn('natural_key', 'text', (c) => c.notNull().unique())
          .addColumn('external_id', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('first_seen', 'text', (c) => c.notNull())
          .addColumn('last_seen', 'text', (c) => c.notNull())
          .addColumn('updated_seq', sql.raw(bigint), (c) => c.notNull());
        for (const col of [
          'kind',
          'fingerprint',
          'issued_at',
          'last_rotated_at',
          'expires_at',
          'rotation_max_age',
          'locations',
          'last_used_at',
        ]) {
          credentials = credentials.addColumn(col, 'text');
        }
        await credentials.execute();
        await db.schema.createIndex('credentials_identity').on('credentials').column('identity_id').execute();
        await db.schema
          .createIndex('credentials_external_id')
          .on('credentials')
          .column('external_id')
          .execute();
        await db.schema
          .createIndex('credentials_fingerprint')
          .on('credentials')
          .column('fingerprint')
          .execute();

        let entitlements = db.schema
          .createTable('entitlements')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('identity_id', 'text', (c) => c.notNull().references('identities.id'))
          .addColumn('natural_key', 'text', (c) => c.notNull().unique())
          .addColumn('resource', 'text', (c) => c.notNull())
          .addColumn('actions', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('updated_seq', sql.raw(bigint), (c) => c.notNull());
        for (const col of ['granted_via', 'granted_at', 'approval_ref', 'last_used_at']) {
          entitlements = entitlements.addColumn(col, 'text');
        }
        await entitlements.execute();
        await db.schema
          .createIndex('entitlements_identity')
          .on('entitlements')
          .column('identity_id')
          .execute();

        // The ledger is append-only: the database itself refuses updates and deletes.
        if (dialect === 'sqlite') {
          for (const table of ['events', 'checkpoints']) {
            for (const op of ['UPDATE', 'DELETE']) {
              await sql
                .raw(
                  `CREATE TRIGGER ${table}_no_${op.toLowerCase()} BEFORE ${op} ON ${table} BEGIN SELECT RAISE(ABORT, 'steward ledger is append-only: ${op} on ${table} refused'); END`,
                )
                .execute(db);
            }
          }
        } else {
          await sql
            .raw(
              `CREATE FUNCTION steward_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'steward ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME; END $$`,
            )
            .execute(db);
          for (const table of ['events', 'checkpoints']) {
            await sql
              .raw(
                `CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION steward_append_only()`,
              )
              .execute(db);
            await sql
              .raw(
                `CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION steward_append_only()`,
              )
              .execute(db);
          }
        }
      },
    },
    '2026-11-23T01-discovery': {
      // Discovery imports: source facts kept beside the accountability record.
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      async up(db: Kysely<any>) {
        for (const [table, cols] of [
          ['identities', ['attributes', 'sightings', 'source_created_at']],
          ['credentials', ['source', 'attributes']],
          ['entitlements', ['source', 'attributes']],
        ] as const) {
          for (const col of cols) await db.schema.alterTable(table).addColumn(col, 'text').execute();
        }
      },
    },
    '2026-11-23T02-secret-links': {
      // A secret found in code that turns out to be a known credential is linked to it.
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      async up(db: Kysely<any>) {
        await db.schema.alterTable('identities').addColumn('linked_to', 'text').execute();
        await db.schema.createIndex('identities_kind').on('identities').column('kind').execute();
      },
    },
    '2026-11-23T03-findings': {
      // Findings of policy-as-code rules (projected from finding.* events) and daily metrics.
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('findings')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('natural_key', 'text', (c) => c.notNull().unique())
          .addColumn('rule', 'text', (c) => c.notNull())
          .addColumn('identity_id', 'text', (c) => c.notNull().references('identities.id'))
          .addColumn('subject_name', 'text')
          .addColumn('title', 'text', (c) => c.notNull())
          .addColumn('severity', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('assignee', 'text')
          .addColumn('assigned_role', 'text')
          .addColumn('due_at', 'text')
          .addColumn('first_seen', 'text', (c) => c.notNull())
          .addColumn('last_seen', 'text', (c) => c.notNull())
          .addColumn('resolved_at', 'text')
          .addColumn('frameworks', 'text')
          .addColumn('exception', 'text')
          .addColumn('exception_expires_at', 'text')
          .addColumn('updated_seq', 'bigint', (c) => c.notNull())
          .execute();
        for (const col of ['identity_id', 'status', 'rule', 'assignee']) {
          await db.schema.createIndex(`findings_${col}`).on('findings').column(col).execute();
        }
        await db.schema
          .createTable('metrics_daily')
          .addColumn('day', 'text', (c) => c.primaryKey())
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('recorded_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
  };
  return { getMigrations: () => Promise.resolve(migrations) };
}
