/**
 * The flows sosync runs (SPEC §6): what a sync of one model pair reads, transforms and writes on
 * either side — never when (that is the job machine's). Imports only src/adapters (studio, online,
 * syncTable types); nothing from machines or server.
 *
 *   flow.ts            the Flow contract the job machine calls; FlowError
 *   direction.ts       the direction verdict from both sides' model info (pure)
 *   registry.ts        model name → flow
 *   company.ts, partner.ts (+ partnerMapping.ts), partnerBpk.ts   one file per flow
 *   onlineModel.ts     the FSO side of any flow, and the FS → FSO create-or-update
 *   studioSide.ts      the FS side of any flow, and the FSO → FS create-or-update
 *   evidence.ts        what a write leaves on the job row, also when it fails
 *   support.ts         the clients, the sync stamp, what a flow gets from its two sides alone
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
