/**
 * XML-RPC on the wire: written by the xmlrpc package's serializer, read by xmlrpcReader.ts (the
 * package's deserializer's values, without its stream and sax). We do the HTTP
 * ourselves (instead of xmlrpc's Client) so that we hold the exact bytes sent and received, can
 * time a call out, and can read the answer's Date header.
 */
import { createRequire } from 'node:module';
import { readXmlrpc, XmlrpcReadError } from './xmlrpcReader.ts';

const require = createRequire(import.meta.url);

interface XmlrpcSerializer {
  serializeMethodCall(method: string, params: unknown[], encoding?: string): string;
  serializeMethodResponse(value: unknown): string;
  serializeFault(fault: { faultCode: number | string; faultString: string }): string;
}

const serializer = require('xmlrpc/lib/serializer.js') as XmlrpcSerializer;

export interface XmlrpcFault {
  faultCode: number | string;
  faultString: string;
}

export type MethodResponse = { fault: XmlrpcFault } | { value: unknown };

export function serializeMethodCall(method: string, params: unknown[]): string {
  return serializer.serializeMethodCall(method, params);
}

export function serializeMethodResponse(value: unknown): string {
  return serializer.serializeMethodResponse(value);
}

export function serializeFault(fault: XmlrpcFault): string {
  return serializer.serializeFault(fault);
}

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

/** Escape text for an XML text node the way a password would stand in a <string>. */
export function escapeXmlText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
