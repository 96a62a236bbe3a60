/** Ids are PostgreSQL / SQL Server `int` and Odoo integers: positive and at most this. */
export const INT32_MAX = 2_147_483_647;
