/**
 * A throw-away PostgreSQL database per test file, on the server the machine runs
 * (127.0.0.1:5432, trust auth). Override with SOSYNC_TEST_PG_URL (a URL of an
 * administrative database; a fresh database is created next to it).
 */
import pg from 'pg';
import { randomBytes } from 'node:crypto';

const adminUrl = process.env.SOSYNC_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  /** connection URL of the new database */
  url: string;
  name: string;
  config: { host: string; port: number; user: string; password?: string; database: string };
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix = 'sosync_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const config = {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username || 'postgres'),
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database: name,
  };
  return {
    url: u.toString(),
    name,
    config,
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
