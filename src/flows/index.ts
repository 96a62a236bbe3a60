/**
 * The flows sosync runs (SPEC §6).
 */
import type { Flow } from './flow.ts';
import { createCompanyFlow } from './company.ts';
import { createPartnerFlow } from './partner.ts';
import { createPartnerBpkFlow } from './partnerBpk.ts';
import type { FlowClients } from './support.ts';

export type { FlowClients };

export function createFlows(clients: FlowClients): Flow[] {
  return [createCompanyFlow(clients), createPartnerFlow(clients), createPartnerBpkFlow(clients)];
}
