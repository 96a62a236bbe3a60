/**
 * Reads an XML-RPC message (methodCall or methodResponse) from its text in one pass.
 *
 * The values it gives are the xmlrpc package's deserializer's, by construction: the same stack of
 * values, marks for arrays and structs, and the same ending of each element (an untyped <value> is
 * a string, i8 stays a string of digits, dateTime.iso8601 becomes a Date, base64 a Buffer, <nil/>
 * null). What differs is the reading: that deserializer runs the text through a stream into sax,
 * whose cost per character was a third of the FSO stand-in's CPU and the largest single part of
 * sosync's own FSO handling under load. fast-xml-parser (a dependency already) only builds a tree,
 * and that alone took 140–190 µs for a 1.6 kB search_read answer that this reads into values in
 * 20–36 µs. XML-RPC uses a small part of XML, so this reads exactly that part and refuses the rest
 * with the place it stopped:
 *   - elements (names case-insensitive, attributes ignored), text, CDATA, comments, <?…?>;
 *   - XML's five named entities and numeric character references; any other "&…" stays as written
 *     (sax also knew HTML's, such as &nbsp;, which no XML-RPC writer sends),
 *     as does a "<" that starts no tag, as non-strict sax kept them (the xmlrpc serializer wrote a
 *     string holding "]]>" twice partly outside its CDATA, and a peer may still);
 *   - a document type (<!DOCTYPE, <!ENTITY) is refused before reading (wire.ts), as before;
 *   - a close tag that does not match its open tag, or an element left open, is malformed.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const dateFormatter = require('xmlrpc/lib/date_formatter.js') as { decodeIso8601(text: string): Date };

export interface XmlrpcFaultValue {
  faultCode: unknown;
  faultString: unknown;
}

export type XmlrpcMessage =
  | { type: 'methodCall'; method: string; params: unknown[] }
  | { type: 'methodResponse'; value: unknown }
  | { type: 'fault'; fault: XmlrpcFaultValue };

export class XmlrpcReadError extends Error {}

const namedEntities: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * The five named entities and character references are decoded; anything else that starts with
 * "&" stays as written, as the deserializer's (non-strict) sax left it.
 */
function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z]+);/g, (whole, name: string) => {
    if (name in namedEntities) return namedEntities[name];
    if (name[0] !== '#') return whole;
    const code = name[1] === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
    return code > 0x10ffff ? whole : String.fromCodePoint(code);
  });
}

/** a letter, "_", ":", "/", "!" or "?": what may follow a "<" that opens markup */
function startsMarkup(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95 || code === 58 || code === 47 || code === 33 || code === 63 || code > 127;
}

const integer = /^-?\d+$/;

/** Read one XML-RPC message. Throws XmlrpcReadError with what is wrong and where. */
export function readXmlrpc(xml: string): XmlrpcMessage {
  // the deserializer's state, element by element
  const stack: unknown[] = [];
  const marks: number[] = [];
  let data = '';
  let untypedValue = false;
  let documentType: 'methodCall' | 'methodResponse' | null = null;
  let responseType: 'params' | 'fault' | null = null;
  let methodName: string | null = null;
  const open: string[] = [];

  const push = (value: unknown) => {
    stack.push(value);
    untypedValue = false;
  };

  const close = (name: string) => {
    switch (name) {
      case 'boolean':
        if (data === '1') push(true);
        else if (data === '0') push(false);
        else throw new XmlrpcReadError(`Illegal boolean value '${data}'`);
        break;
      case 'int':
      case 'i4': {
        const value = parseInt(data, 10);
        if (Number.isNaN(value)) throw new XmlrpcReadError(`Expected an integer but got '${data}'`);
        push(value);
        break;
      }
      case 'i8':
        if (!integer.test(data)) throw new XmlrpcReadError(`Expected integer (I8) value but got '${data}'`);
        push(data);
        break;
      case 'double': {
        const value = parseFloat(data);
        if (Number.isNaN(value)) throw new XmlrpcReadError(`Expected a double but got '${data}'`);
        push(value);
        break;
      }
      case 'string':
      case 'name':
        push(data);
        break;
      case 'array': {
        const mark = marks.pop()!;
        push(stack.splice(mark, stack.length - mark));
        break;
      }
      case 'struct': {
        const mark = marks.pop()!;
        const items = stack.splice(mark, stack.length - mark);
        const struct: Record<string, unknown> = {};
        for (let i = 0; i < items.length; i += 2) struct[items[i] as string] = items[i + 1];
        push(struct);
        break;
      }
      case 'base64':
        push(Buffer.from(data, 'base64'));
        break;
      case 'datetime.iso8601':
        push(dateFormatter.decodeIso8601(data));
        break;
      case 'nil':
        push(null);
        break;
      case 'value':
        if (untypedValue) push(data);
        break;
      case 'params':
        responseType = 'params';
        break;
      case 'fault':
        responseType = 'fault';
        break;
      case 'methodresponse':
        documentType = 'methodResponse';
        break;
      case 'methodname':
        methodName = data;
        break;
      case 'methodcall':
        documentType = 'methodCall';
        break;
      case 'data':
      case 'param':
      case 'member':
        break;
      default:
        throw new XmlrpcReadError(`Unknown XML-RPC tag '${name.toUpperCase()}'`);
    }
  };

  const openTag = (name: string) => {
    if (name === 'array' || name === 'struct') marks.push(stack.length);
    data = '';
    untypedValue = name === 'value';
  };

  let at = 0;
  const length = xml.length;
  while (at < length) {
    const lt = xml.indexOf('<', at);
    const textEnd = lt === -1 ? length : lt;
    if (textEnd > at) {
      const text = xml.slice(at, textEnd);
      if (open.length > 0) data += decodeEntities(text);
      else if (text.trim() !== '') throw new XmlrpcReadError(`malformed XML: text outside the document element near character ${at}`);
    }
    if (lt === -1) break;
    if (!startsMarkup(xml.charCodeAt(lt + 1))) {
      if (open.length === 0) throw new XmlrpcReadError(`malformed XML: text outside the document element near character ${lt}`);
      data += '<';
      at = lt + 1;
      continue;
    }
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt + 4);
      if (end === -1) throw new XmlrpcReadError(`malformed XML: a comment is not closed (character ${lt})`);
      at = end + 3;
      continue;
    }
    if (xml.startsWith('<![CDATA[', lt)) {
      const end = xml.indexOf(']]>', lt + 9);
      if (end === -1) throw new XmlrpcReadError(`malformed XML: a CDATA section is not closed (character ${lt})`);
      if (open.length === 0) throw new XmlrpcReadError(`malformed XML: CDATA outside the document element (character ${lt})`);
      data += xml.slice(lt + 9, end);
      at = end + 3;
      continue;
    }
    if (xml.startsWith('<?', lt)) {
      const end = xml.indexOf('?>', lt + 2);
      if (end === -1) throw new XmlrpcReadError(`malformed XML: a processing instruction is not closed (character ${lt})`);
      at = end + 2;
      continue;
    }
    const gt = xml.indexOf('>', lt + 1);
    if (gt === -1) throw new XmlrpcReadError(`malformed XML: a tag is not closed (character ${lt})`);
    if (xml.charCodeAt(lt + 1) === 47 /* / */) {
      const name = xml.slice(lt + 2, gt).trim().toLowerCase();
      const expected = open.pop();
      if (expected !== name) {
        throw new XmlrpcReadError(expected === undefined
          ? `malformed XML: </${name}> closes nothing (character ${lt})`
          : `malformed XML: </${name}> where </${expected}> was expected (character ${lt})`);
      }
      close(name);
    } else {
      const selfClosing = xml.charCodeAt(gt - 1) === 47;
      const inner = xml.slice(lt + 1, selfClosing ? gt - 1 : gt);
      const nameEnd = inner.search(/[\s]/);
      const name = (nameEnd === -1 ? inner : inner.slice(0, nameEnd)).toLowerCase();
      if (!/^[a-z_][\w.:-]*$/.test(name)) throw new XmlrpcReadError(`malformed XML: "<${inner.slice(0, 20)}" is no tag (character ${lt})`);
      if (open.length === 0 && documentType !== null) throw new XmlrpcReadError(`malformed XML: a second document element <${name}> (character ${lt})`);
      openTag(name);
      if (selfClosing) close(name);
      else open.push(name);
    }
    at = gt + 1;
  }
  if (open.length > 0) throw new XmlrpcReadError(`malformed XML: <${open[open.length - 1]}> is not closed at the end of the message`);

  if (documentType === null || marks.length > 0) throw new XmlrpcReadError('Invalid XML-RPC message');
  if (documentType === 'methodCall') {
    if (!methodName) throw new XmlrpcReadError('Method call did not contain a method name');
    return { type: 'methodCall', method: methodName, params: stack };
  }
  if (responseType === 'fault') {
    const fault = (stack[0] ?? {}) as Record<string, unknown>;
    return { type: 'fault', fault: { faultCode: fault.faultCode, faultString: fault.faultString } };
  }
  if (stack.length > 1) throw new XmlrpcReadError('Response has more than one param');
  if (!responseType) throw new XmlrpcReadError('Invalid method response');
  return { type: 'methodResponse', value: stack[0] };
}
