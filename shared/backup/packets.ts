/**
 * The recipients named at the head of an OpenPGP message (RFC 4880 §4.2,
 * §5.1), read in this process. gpg puts one public-key encrypted session key
 * packet (tag 1) per recipient before the encrypted data, so the first bytes
 * of a new backup say which subkey it is encrypted to; reading them here
 * spares a `gpg --list-packets` process beside a running dump (on a 2-core
 * machine, CPU that pg_dump's compression and gpg's cipher need).
 *
 * Anything this reader does not know for certain (a packet version other
 * than 3, a length it cannot see the end of, a head that ends before the
 * encrypted data begins) answers undefined, and the caller asks gpg instead.
 */

const TAG_PKESK = 1;
const TAG_SKESK = 3;
const TAG_MARKER = 10;
/** Symmetrically encrypted (integrity protected) data, AEAD data: where the session keys end. */
const DATA_TAGS = new Set([9, 18, 20]);

interface PacketHead {
  tag: number;
  /** Offset of the body. */
  body: number;
  /** Length of the body; undefined when it is not a plain length (partial or indeterminate). */
  length: number | undefined;
}

/** The 16-hex key ids of the session key packets at the head of `head`, or undefined when unsure. */
export function recipientKeyIds(head: Buffer): string[] | undefined {
  const keyIds: string[] = [];
  let at = 0;
  for (;;) {
    const packet = readPacketHead(head, at);
    if (!packet) return undefined;
    if (DATA_TAGS.has(packet.tag)) return keyIds.length > 0 ? keyIds : undefined;
    if (packet.length === undefined || packet.body + packet.length > head.length) return undefined;
    if (packet.tag === TAG_PKESK) {
      // v3: version, 8-byte key id, algorithm, then the algorithm's fields.
      if (packet.length < 10 || head[packet.body] !== 3) return undefined;
      keyIds.push(head.subarray(packet.body + 1, packet.body + 9).toString('hex').toUpperCase());
    } else if (packet.tag !== TAG_SKESK && packet.tag !== TAG_MARKER) {
      return undefined;
    }
    at = packet.body + packet.length;
  }
}

/** The packet header at `at`: old format (tag in bits 5–2) or new format (tag in bits 5–0). */
function readPacketHead(buf: Buffer, at: number): PacketHead | undefined {
  const first = buf[at];
  if (first === undefined || (first & 0x80) === 0) return undefined;
  if ((first & 0x40) === 0) {
    const tag = (first >> 2) & 0x0f;
    const lengthType = first & 0x03;
    if (lengthType === 3) return { tag, body: at + 1, length: undefined };
    const size = 1 << lengthType;
    if (at + 1 + size > buf.length) return undefined;
    return { tag, body: at + 1 + size, length: buf.readUIntBE(at + 1, size) };
  }
  const tag = first & 0x3f;
  const o1 = buf[at + 1];
  if (o1 === undefined) return undefined;
  if (o1 < 192) return { tag, body: at + 2, length: o1 };
  if (o1 < 224) {
    const o2 = buf[at + 2];
    if (o2 === undefined) return undefined;
    return { tag, body: at + 3, length: ((o1 - 192) << 8) + o2 + 192 };
  }
  if (o1 === 255) {
    if (at + 6 > buf.length) return undefined;
    return { tag, body: at + 6, length: buf.readUInt32BE(at + 2) };
  }
  // A partial body length: allowed for data packets only, which end the walk above.
  return { tag, body: at + 2, length: undefined };
}
