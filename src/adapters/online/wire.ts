/**
 * XML-RPC on the wire, through the xmlrpc package's own serializer and deserializer. We do the HTTP
 * ourselves (instead of xmlrpc's Client) so that we hold the exact bytes sent and received, can
 * time a call out, and can read the answer's Date header.
 */
import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';

const require = createRequire(import.meta.url);

interface XmlrpcSerializer {
  serializeMethodCall(method: string, params: unknown[], encoding?: string): string;
  serializeMethodResponse(value: unknown): string;
  serializeFault(fault: { faultCode: number | string; faultString: string }): string;
}
type DeserializerCtor = new (encoding?: string) => {
  deserializeMethodResponse(stream: NodeJS.ReadableStream, cb: (err: unknown, value?: unknown) => void): void;
  deserializeMethodCall(
    stream: NodeJS.ReadableStream,
    cb: (err: unknown, method?: string, params?: unknown[]) => void,
  ): void;
};

const serializer = require('xmlrpc/lib/serializer.js') as XmlrpcSerializer;
const Deserializer = require('xmlrpc/lib/deserializer.js') as DeserializerCtor;

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

function streamOf(body: string): PassThrough {
  const stream = new PassThrough();
  stream.end(Buffer.from(body, 'utf8'));
  return stream;
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
export function parseMethodResponse(body: string): Promise<MethodResponse> {
  return new Promise((resolve, reject) => {
    refuseDeclarations(body);
    new Deserializer().deserializeMethodResponse(streamOf(body), (err, value) => {
      if (err && typeof err === 'object' && 'faultString' in err) {
        const e = err as { faultCode?: unknown; faultString?: unknown };
        const code = typeof e.faultCode === 'number' || typeof e.faultCode === 'string' ? e.faultCode : 1;
        resolve({ fault: { faultCode: code, faultString: String(e.faultString ?? '') } });
      } else if (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      } else {
        resolve({ value });
      }
    });
  });
}

/** Parse a methodCall (the stand-in's side). Throws on malformed XML. */
export function parseMethodCall(body: string): Promise<{ method: string; params: unknown[] }> {
  return new Promise((resolve, reject) => {
    refuseDeclarations(body);
    new Deserializer().deserializeMethodCall(streamOf(body), (err, method, params) => {
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve({ method: method ?? '', params: params ?? [] });
    });
  });
}

/** Escape text for an XML text node the way a password would stand in a <string>. */
export function escapeXmlText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
