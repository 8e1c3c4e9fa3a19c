/**
 * nftables rulesets that make a router namespace behave as one kind of NAT
 * (RFC 4787 vocabulary: mapping = which public port a flow gets, filtering =
 * which inbound packets to that port get through). See README.md for the
 * reasoning behind each recipe and how faithful it is.
 */

/** The kinds of LAN gateway the lab can build. */
export type NatKind = 'none' | 'port-restricted' | 'symmetric' | 'full-cone' | 'restricted' | 'udp-blocked';

export const NAT_KINDS: readonly NatKind[] = ['none', 'port-restricted', 'symmetric', 'full-cone', 'restricted', 'udp-blocked'];

/** The NAT type DESIGN.md ("Joining the network", step 4) says a phone behind each kind should report. */
export const EXPECTED_NAT_TYPE: Readonly<Record<NatKind, string>> = {
  'none': 'open',
  'port-restricted': 'port-restricted',
  'symmetric': 'symmetric',
  'full-cone': 'full-cone',
  'restricted': 'restricted',
  'udp-blocked': 'udp-blocked',
};

/** Interface names inside every router namespace. */
export const WAN_IF = 'wan';
export const LAN_IF = 'lan';

/** How long an idle cone mapping lives (close to Linux's UDP conntrack stream timeout). */
const CONE_TIMEOUT_S = 180;

/**
 * The router itself takes nothing unsolicited from the internet, like every
 * home router. This matters for hole punching, not only for tidiness: a
 * packet addressed to the router's own WAN address that no mapping claims
 * would otherwise be *accepted* locally (and answered with ICMP), and
 * conntrack would confirm an entry for it. That entry's reply tuple then
 * blocks the NAT from giving the LAN host's own outgoing flow to the same
 * peer the port it uses for everyone else — the first check of the other
 * side "poisons" the mapping and two port-restricted NATs never meet.
 * Dropped in the input hook, the packet's conntrack entry is never confirmed.
 */
function inputChain(): string {
  return `
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "${WAN_IF}" ct state established,related accept
    iifname "${WAN_IF}" drop
  }`;
}

/**
 * A stateful firewall in front of the LAN: from the internet only replies to
 * flows the LAN opened (conntrack) and flows the NAT itself forwarded (DNAT)
 * get in. Without it a Linux router would route any packet addressed to a
 * private LAN address, which no real NAT does.
 */
function forwardChain(blockUdp: boolean): string {
  return `${inputChain()}
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "${WAN_IF}" ct state established,related accept
    iifname "${WAN_IF}" ct status dnat accept
    iifname "${WAN_IF}" drop${blockUdp ? `
    iifname "${LAN_IF}" oifname "${WAN_IF}" udp dport 53 accept
    iifname "${LAN_IF}" oifname "${WAN_IF}" meta l4proto udp drop` : ''}
  }`;
}

/**
 * Cone NAT for UDP. Mapping: Linux source NAT is already endpoint-independent
 * (nf_nat reuses the mapping of an existing flow from the same LAN address
 * and port, and otherwise keeps the source port when it can). Filtering: a
 * dynamic map, written by outbound packets after source NAT (filter hook at
 * priority 300, after srcnat at 100, so the packet carries the public port),
 *   cone:  public port -> LAN host . LAN port
 * lets inbound UDP to a mapped port be DNATed to the host that owns it, from
 * anyone (full cone) or, with the `peers` set of (remote address, public
 * port) pairs, only from addresses the host has sent to (restricted cone).
 * Entries live CONE_TIMEOUT_S after the last outbound packet.
 */
function coneTables(addressRestricted: boolean): string {
  const inbound = addressRestricted
    ? `iifname "${WAN_IF}" meta l4proto udp ip saddr . udp dport @peers dnat ip to udp dport map @cone`
    : `iifname "${WAN_IF}" meta l4proto udp dnat ip to udp dport map @cone`;
  return `
  map cone { type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout ${CONE_TIMEOUT_S}s; }${addressRestricted ? `
  set peers { type ipv4_addr . inet_service; flags dynamic,timeout; timeout ${CONE_TIMEOUT_S}s; }` : ''}
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ${inbound}
  }
  chain learn {
    type filter hook postrouting priority 300; policy accept;
    oifname "${WAN_IF}" meta l4proto udp update @cone { udp sport : ct original ip saddr . ct original proto-src }${addressRestricted ? `
    oifname "${WAN_IF}" meta l4proto udp update @peers { ip daddr . udp sport }` : ''}
  }`;
}

function postrouting(kind: NatKind): string {
  // fully-random: a random public port for every new flow, i.e. a new mapping per destination (symmetric NAT).
  const masquerade = kind === 'symmetric' ? 'masquerade fully-random' : 'masquerade';
  return `
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${WAN_IF}" ${masquerade}
  }`;
}

/** The `nft -f` input for a router of this kind, or undefined for a plain router (`none`). */
export function natRuleset(kind: NatKind): string | undefined {
  if (kind === 'none') return undefined;
  const cone = kind === 'full-cone' || kind === 'restricted' ? coneTables(kind === 'restricted') : '';
  return `table ip netlab {${cone}${postrouting(kind)}${forwardChain(kind === 'udp-blocked')}
}
`;
}
