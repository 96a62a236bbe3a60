/**
 * The Odoo models the FSO stand-in knows, with the fields SPEC §5–§6 name. Types follow Odoo's
 * field types; `tracked` lists the fields whose change makes FSO announce a sync job.
 */

export type FieldType =
  | 'char' | 'text' | 'selection' | 'integer' | 'float' | 'boolean' | 'date' | 'datetime' | 'many2one';

export interface FieldDef {
  type: FieldType;
  string: string;
  relation?: string;
  required?: boolean;
  readonly?: boolean;
  selection?: readonly (readonly [string, string])[];
  /** what happens to this many2one when the referenced record is deleted */
  ondelete?: 'restrict' | 'set null' | 'cascade';
}

export interface ModelDef {
  name: string;
  description: string;
  fields: Record<string, FieldDef>;
  /** field giving display_name; records without it show "model,id" */
  recName?: string;
  /** default ordering (Odoo's _order) */
  order: string;
  /** FSO announces changes of these fields (a synced model) */
  tracked?: readonly string[];
  /** values derived from the row after each create/write (like Odoo's computed stored fields) */
  compute?: (row: Record<string, unknown>, given: Record<string, unknown>) => Record<string, unknown>;
}

const char = (string: string, extra: Partial<FieldDef> = {}): FieldDef => ({ type: 'char', string, ...extra });
const text = (string: string): FieldDef => ({ type: 'text', string });
const date = (string: string): FieldDef => ({ type: 'date', string });
const datetime = (string: string): FieldDef => ({ type: 'datetime', string });
const bool = (string: string): FieldDef => ({ type: 'boolean', string });
const integer = (string: string): FieldDef => ({ type: 'integer', string });
const many2one = (string: string, relation: string, extra: Partial<FieldDef> = {}): FieldDef =>
  ({ type: 'many2one', string, relation, ondelete: 'set null', ...extra });

/** Fields every Odoo model has. */
export const magicFields: Record<string, FieldDef> = {
  id: { type: 'integer', string: 'ID', readonly: true },
  display_name: { type: 'char', string: 'Display Name', readonly: true },
  create_date: { type: 'datetime', string: 'Created on', readonly: true },
  write_date: { type: 'datetime', string: 'Last Updated on', readonly: true },
  create_uid: { type: 'many2one', string: 'Created by', relation: 'res.users', readonly: true },
  write_uid: { type: 'many2one', string: 'Last Updated by', relation: 'res.users', readonly: true },
};

const sosyncFields: Record<string, FieldDef> = {
  sosync_fs_id: integer('FS ID'),
  sosync_write_date: char('sosync write date'),
};

const partnerFields: Record<string, FieldDef> = {
  name: char('Name'),
  active: bool('Active'),
  firstname: char('First name'),
  lastname: char('Last name'),
  name_zwei: char('Name 2'),
  birthdate_web: date('Birthdate'),
  title_web: char('Title'),
  gender: { type: 'selection', string: 'Gender', selection: [['male', 'Male'], ['female', 'Female'], ['other', 'Other']] },
  BPKForcedFirstname: char('BPK forced first name'),
  BPKForcedLastname: char('BPK forced last name'),
  BPKForcedBirthdate: date('BPK forced birthdate'),
  BPKForcedZip: char('BPK forced ZIP'),
  street: char('Street'),
  street_number_web: char('Street number'),
  zip: char('ZIP'),
  city: char('City'),
  country_id: many2one('Country', 'res.country', { ondelete: 'restrict' }),
  anrede_individuell: char('Individual salutation'),
  email: char('Email'),
  phone: char('Phone'),
  mobile: char('Mobile'),
  fax: char('Fax'),
  donation_deduction_optout_web: bool('Donation deduction opt-out'),
  donation_receipt_web: bool('Donation receipt'),
  newsletter_web: bool('Newsletter'),
  ...sosyncFields,
};

const bpkFields: Record<string, FieldDef> = {
  BPKRequestPartnerID: many2one('Partner', 'res.partner', { required: true, ondelete: 'cascade' }),
  BPKRequestCompanyID: many2one('Company', 'res.company', { required: true, ondelete: 'restrict' }),
  BPKPrivate: char('bPK private'),
  BPKPublic: char('bPK public'),
  BPKRequestFirstname: char('Request first name'),
  BPKRequestLastname: char('Request last name'),
  BPKRequestBirthdate: date('Request birthdate'),
  BPKRequestZIP: char('Request ZIP'),
  BPKRequestDate: datetime('Request date'),
  BPKRequestData: text('Request data'),
  BPKResponseData: text('Response data'),
  BPKErrorRequestDate: datetime('Error request date'),
  BPKErrorRequestData: text('Error request data'),
  BPKErrorResponseData: text('Error response data'),
  BPKErrorRequestFirstname: char('Error request first name'),
  BPKErrorRequestLastname: char('Error request last name'),
  BPKErrorRequestBirthdate: date('Error request birthdate'),
  BPKErrorRequestZIP: char('Error request ZIP'),
  BPKErrorCode: char('Error code'),
  BPKErrorText: text('Error text'),
  ...sosyncFields,
};

const systems = [['fso', 'FS-Online'], ['fs', 'Fundraising Studio']] as const;
const selection = (string: string, values: readonly (readonly [string, string])[]): FieldDef => ({ type: 'selection', string, selection: values });

/**
 * FSO addon's `sosync.job`, written out here on its own (not derived from what sosync sends), so a
 * field sosync names wrongly meets Odoo's refusal in a test.
 */
const sosyncJobModelFields: Record<string, FieldDef> = {
  job_id: integer('Job ID'),
  job_date: datetime('Job Date'),
  job_source_system: selection('Job Source System', systems),
  job_source_model: char('Job Source Model'),
  job_source_record_id: integer('Job Source Record ID'),
  job_source_sosync_write_date: char('Job Source sosync_write_date'),
  job_source_fields: text('Job Source Fields'),
  job_fetched: datetime('Job Fetched Date'),
  job_start: char('Job Start'),
  job_end: char('Job End'),
  job_run_count: integer('Job Run Count'),
  job_state: selection('State', [['new', 'New'], ['inprogress', 'In Progress'], ['child', 'ChildJob Processing'],
    ['done', 'Done'], ['error', 'Error'], ['skipped', 'Skipped']]),
  job_error_code: selection('Error Code', [['timeout', 'Job timed out'], ['run_counter', 'Run count exceeded'],
    ['child_job', 'Child job error'], ['sync_source', 'Could not determine sync direction'],
    ['transformation', 'Model transformation error'], ['cleanup', 'Job finalization error'], ['unknown', 'Unexpected error']]),
  job_error_text: text('Error'),
  job_log: text('Job Log'),
  parent_job_id: integer('Parent Job ID'),
  child_job_start: char('Child Processing Start'),
  child_job_end: char('Child Processing End'),
  sync_source_system: selection('Source System', systems),
  sync_source_model: char('Source Model'),
  sync_source_record_id: integer('Source Record ID'),
  sync_target_system: selection('Target System', systems),
  sync_target_model: char('Target Model'),
  sync_target_record_id: integer('Target Record ID'),
  sync_source_data: text('Sync Source Data'),
  sync_target_data_before: text('Sync Target Data before'),
  sync_target_request: text('Sync Target Request(s)'),
  sync_target_answer: text('Sync Target Answer(s)'),
  sync_target_data_after: text('Sync Target Data after'),
  sync_start: char('Sync Start'),
  sync_end: char('Sync End'),
};

const notTracked = new Set(['sosync_fs_id', 'sosync_write_date']);

export const modelDefs: ModelDef[] = [
  {
    name: 'res.partner',
    description: 'Contact',
    fields: partnerFields,
    recName: 'name',
    order: 'id',
    tracked: Object.keys(partnerFields).filter((f) => !notTracked.has(f)),
    compute(row, given) {
      // partner_firstname: the name follows first and last name unless given itself
      if (('firstname' in given || 'lastname' in given) && !('name' in given)) {
        const name = [row.firstname, row.lastname].filter((v) => typeof v === 'string' && v !== '').join(' ');
        return { name: name || null };
      }
      return {};
    },
  },
  {
    name: 'res.company',
    description: 'Companies',
    fields: { name: char('Company Name', { required: true }), ...sosyncFields },
    recName: 'name',
    order: 'id',
    tracked: ['name'],
  },
  {
    name: 'res.partner.bpk',
    description: 'bPK',
    fields: bpkFields,
    order: 'id',
    tracked: Object.keys(bpkFields).filter((f) => !notTracked.has(f)),
  },
  {
    name: 'res.country',
    description: 'Country',
    fields: { name: char('Country Name', { required: true }), code: char('Country Code') },
    recName: 'name',
    order: 'name',
  },
  {
    name: 'res.users',
    description: 'Users',
    fields: { name: char('Name'), login: char('Login', { required: true }), active: bool('Active') },
    recName: 'name',
    order: 'login',
  },
  {
    name: 'sosync.job',
    description: 'sosync sync jobs',
    fields: sosyncJobModelFields,
    order: 'id',
  },
];
