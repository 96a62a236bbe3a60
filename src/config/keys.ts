/**
 * Every configuration key sosync knows, in one table: its type, default and meaning.
 * The reader validates against it, and a test checks that README.md and sosync.example.ini
 * document every key listed here.
 */

export type KeyType = 'string' | 'port' | 'integer' | 'boolean' | 'list' | 'level';

export interface KeyDefinition {
  key: string;
  type: KeyType;
  /** default as it would be written in the INI; undefined = no default */
  default?: string;
  description: string;
  /** never logged or shown */
  secret?: boolean;
  /** only meaningful for the sandbox (no real systems configured) */
  sandboxOnly?: boolean;
}

export const keyDefinitions: readonly KeyDefinition[] = [
  { key: 'port', type: 'port', default: '5050', description: 'HTTP port of the API' },
  { key: 'listen', type: 'list', default: '0.0.0.0', description: 'address(es) to bind, comma separated' },
  { key: 'api_token', type: 'string', description: 'bearer token every route but /service/health requires (at least 16 characters); none = open API', secret: true },
  { key: 'api_token_file', type: 'string', description: 'file holding api_token (first line); must be accessible by its owner only (chmod 600)' },
  { key: 'instance', type: 'string', description: 'instance name; the Odoo database name and part of default paths (required with real systems)' },
  { key: 'throttle_ms', type: 'integer', default: '0', description: 'minimum wall time one job occupies; 0 = no throttling' },
  { key: 'job_workers', type: 'integer', default: '1', description: 'jobs run at once (1–64); more than 1 needs a PostgreSQL sync table (db_host): each worker claims its jobs and locks their records there' },
  { key: 'max_time_drift_ms', type: 'integer', default: '30', description: 'tolerated clock drift in ms; values <= 0 mean 30' },
  { key: 'db_host', type: 'string', description: 'PostgreSQL host for sync_table; none = embedded PGlite database under state_dir' },
  { key: 'db_port', type: 'port', default: '5432', description: 'PostgreSQL port' },
  { key: 'db_name', type: 'string', description: 'PostgreSQL database (default: the instance name)' },
  { key: 'db_user', type: 'string', description: 'PostgreSQL user (default: the instance name)' },
  { key: 'db_user_pw', type: 'string', description: 'PostgreSQL password', secret: true },
  { key: 'state_dir', type: 'string', description: 'directory for local state (the embedded database); default systemd\'s $STATE_DIRECTORY, else ~/.local/state/sosync/<instance>' },
  { key: 'log_file', type: 'string', description: 'log file path (its directory is created when allowed); none = stdout only' },
  { key: 'log_level', type: 'level', default: 'Information', description: 'Trace, Debug, Information, Warning, Error, Critical or pino names (trace … fatal)' },
  { key: 'studio_mssql_host', type: 'string', description: 'FS SQL Server host: host, host,port or host:port (required unless sandbox)' },
  { key: 'studio_mssql_db', type: 'string', description: 'FS database name (default mdb_<instance>)' },
  { key: 'studio_sosync_user', type: 'string', description: 'FS login' },
  { key: 'studio_sosync_pw', type: 'string', description: 'FS password', secret: true },
  { key: 'studio_mssql_encrypt', type: 'boolean', default: 'true', description: 'encrypt the FS connection (TLS)' },
  { key: 'studio_mssql_trust_server_certificate', type: 'boolean', default: 'false', description: 'accept a self-signed FS server certificate' },
  { key: 'studio_connect_timeout_ms', type: 'integer', default: '15000', description: 'FS connect timeout' },
  { key: 'studio_request_timeout_ms', type: 'integer', default: '30000', description: 'FS statement timeout' },
  { key: 'online_host', type: 'string', description: 'FSO host: host[:port], optional http:// or https:// (plain host → http://; required unless sandbox)' },
  { key: 'online_sosync_user', type: 'string', description: 'FSO login' },
  { key: 'online_sosync_pw', type: 'string', description: 'FSO password', secret: true },
  { key: 'online_timeout_ms', type: 'integer', default: '30000', description: 'FSO XML-RPC call timeout' },
  { key: 'online_ntp_port', type: 'port', default: '123', description: 'NTP port asked on the FSO host for the drift gate' },
  { key: 'ntp_servers', type: 'list', default: 'at.pool.ntp.org,ptbtime1.ptb.de,bevtime1.metrologie.at,0.europe.pool.ntp.org', description: 'comma-separated NTP servers (host[:port])' },
  { key: 'ntp_timeout_ms', type: 'integer', default: '2000', description: 'how long one NTP server may take to answer' },
  { key: 'db_connect_timeout_ms', type: 'integer', default: '10000', description: 'PostgreSQL connect timeout for the sync table' },
  { key: 'db_statement_timeout_ms', type: 'integer', default: '30000', description: 'PostgreSQL statement timeout for the sync table (a statement running longer is cancelled)' },
  { key: 'retry_base_ms', type: 'integer', default: '10000', description: 'wait before the first retry of a job that failed for a transient reason (outage, timeout, deadlock); doubles per attempt' },
  { key: 'retry_max_ms', type: 'integer', default: '600000', description: 'longest wait between two attempts of a job' },
  { key: 'retry_max_attempts', type: 'integer', default: '10', description: 'attempts of a transiently failing job before it ends in error' },
  { key: 'outage_probe_interval_ms', type: 'integer', default: '30000', description: 'while FS or FSO is down the job worker pauses and probes it with one call this often' },
  { key: 'inspect', type: 'boolean', default: 'true', description: 'live inspection: the page under /visualizer/ and the /inspect WebSocket; false = actors run uninspected and those routes answer 404' },
  { key: 'protocol_batch_size', type: 'integer', default: '100', description: 'job rows the protocol worker copies to FSO per batch' },
  { key: 'keep_finished_days', type: 'integer', default: '90', description: 'done and skipped root jobs (with their child jobs) older than this many days are removed by a background cleanup in small batches; 0 = keep them forever' },
  { key: 'sandbox', type: 'boolean', default: 'false', description: 'run the built-in stand-ins for FS, FSO and NTP (always on without --conf)' },
  { key: 'sandbox_fso_port', type: 'port', default: '8069', description: 'sandbox: FSO stand-in port', sandboxOnly: true },
  { key: 'sandbox_fs_port', type: 'port', default: '1433', description: 'sandbox: FS stand-in port', sandboxOnly: true },
  { key: 'sandbox_ntp_port', type: 'port', default: '12300', description: 'sandbox: NTP stand-in port (UDP)', sandboxOnly: true },
  { key: 'sandbox_persons', type: 'integer', default: '1000', description: 'sandbox: demo persons to seed', sandboxOnly: true },
  { key: 'sandbox_fs_latency_ms', type: 'integer', default: '0', description: 'sandbox: delay the FS stand-in adds to every request (SQL batch, RPC, transaction request) before it answers, to mimic a network; 0 = none', sandboxOnly: true },
  { key: 'sandbox_fso_latency_ms', type: 'integer', default: '0', description: 'sandbox: delay the FSO stand-in adds to every XML-RPC call before it answers, to mimic a network; 0 = none', sandboxOnly: true },
  { key: 'sandbox_data_dir', type: 'string', description: 'sandbox: directory for the stand-ins and the sync table; none = in memory', sandboxOnly: true },
];

export const knownKeys = new Set(keyDefinitions.map((d) => d.key));
export const secretKeyNames = keyDefinitions.filter((d) => d.secret).map((d) => d.key);
