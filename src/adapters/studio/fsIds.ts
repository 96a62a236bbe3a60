/**
 * FS's fixed ids that sosync relies on (SPEC §6.2): type ids of the *typID columns, group ids of
 * zGruppeDetail and the dbo.Typen rows that hold system defaults. The one place these numbers are
 * written in src/.
 */

/** PersontypID of a person sosync creates. */
export const newPersonTypeId = 101;

/** GeschlechttypID FSO's `gender` maps to. */
export const genderTypeIds = { male: 290, female: 291 } as const;

/** GeschlechttypIDs FSO cannot express; FS keeps them when FSO says "other". */
export const studioOnlyGenderTypeIds: readonly number[] = [292, 293, 294, 295];

/** AdresstypID of an address sosync creates. */
export const newAddressTypeId = 311;

/** AnredeformtypID: FS's standard salutation (the stand-in's Typen defaults), and "use IndividuelleAnrede". */
export const salutationTypeIds = { standard: 321, individual: 324 } as const;

/** AnredeformtypID meaning "use IndividuelleAnrede". */
export const individualSalutationTypeId = salutationTypeIds.individual;

/** TelefontypID of the person stack's numbers. */
export const phoneTypeIds = { phone: 400, mobile: 401, fax: 403 } as const;

/** zGruppeDetailID of the person stack's groups. */
export const groupIds = {
  donationDeductionOptOut: 110493,
  donationReceipt: 20168,
  newsletter: 30104,
} as const;

/** dbo.Typen ids of system defaults (their Formularwert is the default id). */
export const typenIds = { addressSalutation: 200120, emailSalutation: 200122, defaultCountry: 200525 } as const;
