/**
 * XML-RPC on the wire: written by xmlrpcWriter.ts and read by xmlrpcReader.ts (the xmlrpc
 * package's serializer's bytes and deserializer's values, without xmlbuilder, streams and sax; see
 * there for where they differ). We do the HTTP
 * ourselves (instead of xmlrpc's Client) so that we hold the exact bytes sent and received, can
 * time a call out, and can read the answer's Date header.
 */
import { readXmlrpc, XmlrpcReadError } from './xmlrpcReader.ts';

export {
  escapeXmlText, writeFault as serializeFault, writeMethodCall as serializeMethodCall, writeMethodResponse as serializeMethodResponse,
} from './xmlrpcWriter.ts';

export interface XmlrpcFault {
  faultCode: number | string;
  faultString: string;
}

export type MethodResponse = { fault: XmlrpcFault } | { value: unknown };

/**
 * XML-RPC has no use for a document type: a DTD or entity declaration in a message can only aim
 * at entity expansion (billion laughs) or external entities, so it is refused before parsing.
 */
const declaration = /<!(DOCTYPE|ENTITY)/i;

function refuseDeclarations(body: string): void {
  const found = declaration.exec(body);
  if (found) throw new Error(`the XML-RPC message contains a <!${found[1].toUpperCase()} declaration; refused without parsing`);
}

/** Parse a methodResponse; a Fault is a result here, not an exception. Throws on malformed XML. */
export async function parseMethodResponse(body: string): Promise<MethodResponse> {
  refuseDeclarations(body);
  const message = readXmlrpc(body);
  if (message.type === 'fault') {
    const { faultCode, faultString } = message.fault;
    const code = typeof faultCode === 'number' || typeof faultCode === 'string' ? faultCode : 1;
    return { fault: { faultCode: code, faultString: String(faultString ?? '') } };
  }
  if (message.type !== 'methodResponse') throw new XmlrpcReadError('Not a method response');
  return { value: message.value };
}

/** Parse a methodCall (the stand-in's side). Throws on malformed XML. */
export async function parseMethodCall(body: string): Promise<{ method: string; params: unknown[] }> {
  refuseDeclarations(body);
  const message = readXmlrpc(body);
  if (message.type !== 'methodCall') throw new XmlrpcReadError('Not a method call');
  return { method: message.method, params: message.params };
}
