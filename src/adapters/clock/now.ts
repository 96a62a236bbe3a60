/** The one wall clock of the service; everything that needs "now" gets this (or a test's) injected. */
export const systemNow = (): Date => new Date();
