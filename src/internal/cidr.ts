/** Whether a string is an IPv4 or IPv6 CIDR the API server accepts (address/prefix). */
export function cidrFamily(cidr: string): 4 | 6 | undefined {
  const m = cidr.match(/^([^/]+)\/(\d{1,3})$/);
  if (!m) return undefined;
  const [, address, prefix] = m;
  const bits = Number(prefix);
  const v4 = address.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255 && String(Number(o)) === o) && bits <= 32 ? 4 : undefined;
  if (/^[0-9a-fA-F:]+$/.test(address) && address.includes(':') && (address.match(/::/g) ?? []).length <= 1 && bits <= 128) {
    const groups = address.split(':').filter((g) => g !== '');
    return groups.every((g) => g.length <= 4) && groups.length <= 8 ? 6 : undefined;
  }
  return undefined;
}
