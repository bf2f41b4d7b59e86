/**
 * `deliver(envelope, destination, options)`: the flow of DESIGN.md. Options and envelope are
 * checked before any I/O; then for each next hop and each of its servers, while recipients
 * are left, one session; every outcome goes into the ledger (Postfix's mark-and-sweep);
 * what is left at the end gets the last error. Network and server trouble are results,
 * never exceptions.
 */
import { createHash } from 'node:crypto';
import { MailwireError } from './errors.js';
import { raceAbort } from './abort.js';
import type { Envelope, Recipient } from './envelope.js';
import type { Attempt, DeliveryResult } from './results/delivery-result.js';
import { resolveOptions, type DeliverOptions, type ResolvedOptions, type TlsPolicy } from './options.js';
import type { Destination } from './destination/destination.js';
import { parseDestination } from './destination/parse-destination.js';
import { RecipientLedger } from './results/ledger.js';
import { describe, type Described, type ServerIdentity } from './results/describe.js';
import { planServers, resolverFor, type Server } from './routing/plan.js';
import { dnsErrorClass, type TlsaRecord } from './routing/resolver.js';
import { evaluateTlsPolicy, type TlsDecision, type TlsPolicyContext } from './tls/tls-policy.js';
import { getMtaStsPolicy, type MtaStsLookup, type MtaStsOptions } from './tls/mta-sts.js';
import type { Capabilities } from './protocol/ehlo-parser.js';
import { parseReply } from './protocol/reply-parser.js';
import type { SaslCredentials } from './sasl/credentials.js';
import { chooseMechanism } from './sasl/choose.js';
import { authCacheKey, cachedFailure, secretHash } from './sasl/auth-cache.js';
import { appliedLevel, startTls, checkPeer, tlsInfo, type TlsOk } from './node/tls-connect.js';
import type { TlsResultType } from './protocol/why.js';
import { ClientSession } from './protocol/client-session.js';
import type { Why } from './protocol/why.js';
import { peekHeader, prepareSource, type PreparedSource } from './node/message-source.js';
import { deliveredToAddresses, headerNeedsUtf8 } from './content/header-block.js';
import { formatMailbox, parseMailbox } from './protocol/address.js';
import { connectSocket } from './node/connect.js';
import { Connection, type TlsInfo } from './node/conversation.js';
import type { TransactionInput } from './protocol/client-session.js';
import { poolKey } from './pool/pool-key.js';
import type { Lease } from './pool/pool.js';

/** Postfix `minimal_backoff_time`: the plaintext retry at level may needs a message this old. */
const MINIMAL_BACKOFF_MS = 300_000;

interface CheckedEnvelope {
  from: string;
  to: Recipient[];
  given: string[];
  message: Envelope['message'];
  size?: number;
  dsn?: { ret?: 'FULL' | 'HDRS'; envid?: string };
  smtputf8: boolean | 'auto';
  requireTls: boolean;
  body?: '7BIT' | '8BITMIME';
  queuedAt?: Date;
}

/** Deliver one message to one destination; resolves with exactly one result per recipient. */
export async function deliver(envelope: Envelope, destination: string | Destination[], options?: DeliverOptions): Promise<DeliveryResult> {
  const opts = resolveOptions(options);
  const env = checkEnvelope(envelope);
  const destinations = typeof destination === 'string' ? parsedDestination(destination, opts, options?.knownTcpPorts === undefined) : checkDestinations(destination);
  let source: PreparedSource;
  try {
    source = prepareSource(env.message);
  } catch (err) {
    throw new MailwireError('EENVELOPE', err instanceof Error ? err.message : String(err));
  }
  return new Delivery(env, destinations, opts, source).run();
}

/** Parsed destinations by text and the options they depend on (a worker sends to the same few). */
const parsedDestinations = new Map<string, Destination[]>();

function parsedDestination(text: string, opts: ResolvedOptions, cacheable: boolean): Destination[] {
  const parse = () => parseDestination(text, { protocol: opts.protocol, port: opts.port, knownTcpPorts: opts.knownTcpPorts, myHostname: opts.heloName });
  if (!cacheable) return parse();
  const key = `${opts.protocol}\0${opts.port ?? ''}\0${opts.heloName}\0${text}`;
  let d = parsedDestinations.get(key);
  if (!d) {
    d = parse(); // a syntax error throws and is not cached
    if (parsedDestinations.size >= 256) parsedDestinations.clear();
    parsedDestinations.set(key, d);
  }
  return d;
}

class Delivery {
  private readonly ledger: RecipientLedger;
  private readonly attempts: Attempt[] = [];
  private contentSpent = false;
  /** POOL-11: a session of this delivery was filed under its destination label. */
  private labelStored = false;

  constructor(
    private readonly env: CheckedEnvelope,
    private readonly destinations: Destination[],
    private readonly opts: ResolvedOptions,
    private source: PreparedSource,
  ) {
    this.ledger = new RecipientLedger(env.given, {
      softBounce: opts.softBounce,
      ...(opts.deliveryStatusFilter ? { statusFilter: opts.deliveryStatusFilter } : {}),
      onWarning: (message) => opts.onEvent({ type: 'warning', message }),
    });
  }

  /** The envelope as written on the wire: after `rewriteAddress` (smtp_generic_maps, REW-1). */
  private wire: { from: string; to: string[] } = { from: '', to: [] };
  /** PROTO-12: a header of the message carries UTF-8. */
  private utf8Headers = false;

  private get aborted(): boolean {
    return this.opts.signal?.aborted ?? false;
  }

  async run(): Promise<DeliveryResult> {
    const { opts } = this;
    if (!(await this.prepareContent())) return this.finish(false);
    // Sites: the destinations, then the fallback relays (Postfix smtp_connect_inet appends them).
    const sites = this.destinations.map((dest) => ({ dest, fallback: false }));
    if (opts.fallbackRelay.length > 0) {
      if (this.destinations.some((d) => d.kind === 'unix')) {
        opts.onEvent({ type: 'warning', message: 'fallbackRelay is ignored for unix: destinations (no failover)' });
      } else {
        for (const relay of opts.fallbackRelay) {
          for (const dest of parseDestination(relay, { protocol: opts.protocol, port: opts.port, knownTcpPorts: opts.knownTcpPorts, myHostname: opts.heloName })) {
            sites.push({ dest, fallback: true });
          }
        }
      }
    }
    let lastSiteWasFallback = false;
    sites: for (let d = 0; d < sites.length; d++) {
      if (this.ledger.left.length === 0 || this.aborted) break;
      if (this.contentSpent) {
        this.sourceSpent();
        break;
      }
      const { dest, fallback } = sites[d]!;
      lastSiteWasFallback = fallback;
      // smtp_mx_session_limit counts sessions that finished the handshake, per site (MX-10);
      // a session reused from the pool counts too (POOL-11).
      let sessions = 0;
      // POOL-11: a connection kept under this next hop's destination label is used before any
      // DNS lookup; its address then leaves the candidate list.
      const label = this.destinationLabel(dest);
      const reusedEndpoints = new Set<string>();
      if (label !== undefined && opts.pool && !opts.pool.closed) {
        const kept = opts.pool.takeByLabel(label, opts.transactionPipelining);
        if (kept) {
          const tag = kept.tag as KeptSession;
          reusedEndpoints.add(endpointOf(tag.server));
          await this.attempt(dest, tag.server, tag.decision, {
            finalBeforeHandshake: false,
            onHandshake: () => {
              ++sessions;
              return false;
            },
            plainRetryAllowed: false,
            bestMx: tag.bestMx,
            leased: { conn: kept.conn, endpointKey: tag.endpointKey, probe: kept.probe },
            label,
          });
          if (this.ledger.left.length === 0 || this.aborted) break;
        }
      }
      const started = new Date();
      const plan = await raceAbort(
        planServers(dest, {
          protocol: opts.protocol,
          resolver: opts.resolver,
          dnsSupportLevel: opts.dnsSupportLevel,
          hostLookup: opts.hostLookup,
          inetProtocols: opts.inetProtocols,
          mxAddressLimit: opts.mxAddressLimit,
          randomizeAddresses: opts.randomizeAddresses,
          balanceInetProtocols: opts.balanceInetProtocols,
          addressPreference: opts.addressPreference,
          myAddresses: opts.myAddresses,
          deferIfNoMxAddressFound: opts.deferIfNoMxAddressFound,
          ignoreMxLookupError: opts.ignoreMxLookupError,
          myHostname: opts.heloName,
          random: opts.random,
          signal: opts.signal,
        }),
        opts.signal,
      ).catch((err: unknown) => {
        if (this.aborted) return undefined;
        throw err;
      });
      if (!plan) break; // aborted
      if (!plan.ok) {
        // A lookup failure marks no recipient; the loop moves on to later sites (§1.1).
        const described = describe(plan.why, undefined);
        this.ledger.siteError(described);
        this.attempts.push({ nexthop: dest.nexthop, host: hostOf(dest), address: '', outcome: 'skipped', stage: 'lookup', reason: described.reason, status: described.status, startedAt: started, endedAt: new Date() });
        if (plan.final) break; // a loop status ends the list (FINAL_NEXTHOP)
        continue;
      }
      // FINAL_NEXTHOP: the last site, or we are an MX for it (no fallback relay after us).
      const finalNexthop = d === sites.length - 1 || plan.iAmMx || dest.kind === 'unix';
      const servers = reusedEndpoints.size > 0 ? plan.servers.filter((s) => !reusedEndpoints.has(endpointOf(s))) : plan.servers;
      // MTA-STS (RFC 8461) applies to a domain next hop, looked up once per site.
      const stsLookup = await this.mtaSts(dest);
      for (let i = 0; i < servers.length; i++) {
        if (this.ledger.left.length === 0 || this.aborted) break sites;
        if (this.contentSpent) {
          this.sourceSpent();
          break sites;
        }
        const server = servers[i]!;
        const tls = await this.tlsDecision(dest, server, plan.mxSecure, stsLookup);
        if (!tls) break sites; // aborted
        if (!tls.ok) {
          // A TLS policy that cannot be met here skips the server; it never weakens security.
          const identity = server.kind === 'unix' ? { host: server.host, address: server.path } : { host: server.host, address: server.address, port: server.port };
          const described: Described = { status: tls.status, reason: tls.reason, success: false, ...(tls.tlsFailure ? { tlsFailure: tls.tlsFailure } : {}) };
          this.ledger.siteError(described, identity);
          this.attempts.push({
            nexthop: dest.nexthop,
            host: server.host,
            address: server.kind === 'unix' ? server.path : server.address,
            ...(server.kind === 'tcp' ? { port: server.port } : {}),
            outcome: 'skipped',
            stage: 'tls-policy',
            reason: tls.reason,
            status: tls.status,
            startedAt: new Date(),
            endedAt: new Date(),
          });
          continue;
        }
        let decision = tls;
        // FINAL_SERVER before the handshake: the last address of a final next hop (§1.1 step 6).
        const lastAddress = i === servers.length - 1;
        let limitReached = false;
        for (;;) {
          // Postfix §1.6: the plaintext retry is for level may, without REQUIRETLS, for a message
          // queued long enough (no SASL credentials exist in this version).
          const plainRetryAllowed = decision.level === 'may' && !this.env.requireTls && this.messageOldEnough();
          const r = await this.attempt(dest, server, decision, {
            finalBeforeHandshake: finalNexthop && lastAddress,
            // After a completed handshake that reaches the session limit, this is the last
            // session of the site; at a final next hop its soft errors are final too.
            onHandshake: () => {
              if (++sessions === opts.mxSessionLimit) {
                limitReached = true;
                return finalNexthop;
              }
              return false;
            },
            plainRetryAllowed,
            bestMx: server.kind === 'tcp' && server.preference === plan.bestPreference,
            stsFailure: stsLookup?.failure,
            ...(label !== undefined ? { label } : {}),
          });
          // Postfix RETRY_AS_PLAINTEXT: the same address again at level none, not counted (§1.6).
          if (r.retryPlaintext && this.ledger.left.length > 0 && !this.aborted && !this.contentSpent) {
            opts.onEvent({ type: 'warning', message: `TLS failed with ${server.host}; retrying the same server in plaintext` });
            decision = { ...decision, level: 'none', startTls: 'never', check: { kind: 'none' } };
            continue;
          }
          break;
        }
        if (limitReached) break;
      }
      if (finalNexthop && plan.iAmMx) break;
    }
    return this.finish(lastSiteWasFallback);
  }

  private finish(lastSiteWasFallback: boolean): DeliveryResult {
    const { opts } = this;
    if (this.aborted) {
      this.ledger.siteError(describe({ kind: 'local', reason: 'aborted', detail: 'delivery aborted by the caller' }, undefined));
    }
    // MX-20: a hard error left at the end, after a fallback relay or at the relayhost, is a
    // configuration problem: 4.3.5, deferred (the text is kept).
    const recipients = this.ledger.finish({ hardIsConfigurationProblem: lastSiteWasFallback || opts.role === 'relayhost' });
    recipients.forEach((r, index) => opts.onEvent({ type: 'recipient', index, recipient: r.recipient, action: r.action, status: r.status, reason: r.reason }));
    // DSN-12: the last server tried failed as a whole (it never completed a session).
    const last = this.attempts[this.attempts.length - 1];
    const siteDown = last !== undefined && last.outcome !== 'completed' && recipients.some((r) => r.action === 'delayed' && r.status !== '4.4.7');
    return { recipients, attempts: this.attempts, destinationStatus: siteDown ? 'throttled' : 'ok' };
  }

  /**
   * Before any server: the envelope after `rewriteAddress` (REW-1), and the header block when
   * flag D's loop check (DSN-5) or SMTPUTF8 detection (PROTO-12) needs it. False when nothing
   * can be sent (the recipients then get the error recorded here).
   */
  private async prepareContent(): Promise<boolean> {
    const { opts, env } = this;
    try {
      this.wire = {
        from: env.from === '' ? '' : this.rewrite(env.from, { where: 'mail' }),
        to: env.to.map((r) => this.rewrite(r.address, { where: 'rcpt' })),
      };
    } catch (err) {
      this.hookFailed('rewriteAddress', err);
      return false;
    }
    const addressUtf8 = [this.wire.from, ...this.wire.to].some((a) => /[^\x00-\x7f]/.test(a));
    const needHeader = this.source.kind === 'bytes' || opts.flags.deliveredTo === true || (env.smtputf8 !== false && !addressUtf8);
    if (!needHeader) return true;
    let header: Uint8Array;
    try {
      const peeked = await raceAbort(peekHeader(this.source, opts.headerSizeLimit), opts.signal);
      this.source = peeked.source;
      header = peeked.header;
    } catch (err) {
      if (this.aborted) return false;
      const detail = `cannot read the message: ${err instanceof Error ? err.message : String(err)}`;
      this.ledger.siteError(describe({ kind: 'local', reason: 'message-source', detail }, undefined));
      return false;
    }
    this.utf8Headers = env.smtputf8 !== false && headerNeedsUtf8(header);
    if (opts.flags.deliveredTo) {
      // DSN-5 (Postfix smtp.c, delivered_hdr.c): the recipient, after generic mapping and
      // RFC 822 quoting, lowercased, already in a Delivered-To header: a loop, 5.4.6.
      const seen = deliveredToAddresses(header);
      this.wire.to.forEach((address, index) => {
        if (!seen.has(quote822(address).toLowerCase())) return;
        const why: Why = { kind: 'local', reason: 'forwarding-loop', detail: `mail forwarding loop for ${env.to[index]!.address}` };
        this.ledger.outcome(index, describe(why, undefined), { finalServer: true });
      });
    }
    return true;
  }

  /** `rewriteAddress` for one address; anything but a one-line string is an error (Postfix: a lookup error defers). */
  private rewrite(address: string, ctx: { where: 'mail' | 'rcpt' | 'header'; header?: string }): string {
    const f = this.opts.rewriteAddress;
    if (!f) return address;
    const out = f(address, ctx);
    if (out === undefined) return address;
    if (typeof out !== 'string' || /[\r\n\0]/.test(out)) throw new Error(`rewriteAddress returned ${typeof out === 'string' ? 'a string with CR, LF or NUL' : typeof out} for ${address}`);
    return out;
  }

  /** A content hook threw: 4.3.0 for the recipients still to try, and nothing of the message sent (REW-5). */
  private hookFailed(hook: string, err: unknown): void {
    const detail = `${hook} failed: ${err instanceof Error ? err.message : String(err)}`;
    this.opts.onEvent({ type: 'warning', message: detail });
    this.ledger.siteError(describe({ kind: 'local', reason: 'content-hook', detail }, undefined));
  }

  /**
   * Flags R, O, D (DSN-5 .. DSN-7): the header lines put in front of the message for one
   * transaction, in Postfix's order (Return-Path, X-Original-To, Delivered-To), each address
   * after generic mapping and RFC 822 quoting (smtp_out_add_header).
   */
  private prefixFor(batch: number[]): Uint8Array | undefined {
    const { flags } = this.opts;
    if (!flags.returnPath && !flags.originalTo && !flags.deliveredTo) return undefined;
    const lines: string[] = [];
    const header = (name: string, address: string) => quote822(address === '' ? '' : this.rewrite(address, { where: 'header', header: name }));
    if (flags.returnPath) lines.push(`Return-Path: <${header('Return-Path', this.env.from)}>`);
    // O and D go with one recipient per transaction (the batches are of one).
    const r = this.env.to[batch[0]!]!;
    if (flags.originalTo) lines.push(`X-Original-To: ${header('X-Original-To', r.original ?? r.address)}`);
    if (flags.deliveredTo) lines.push(`Delivered-To: ${header('Delivered-To', r.address)}`);
    return new TextEncoder().encode(lines.map((l) => `${l}\r\n`).join(''));
  }

  /** A one-shot stream was sent once and cannot go to another server: 4.3.0 for those left. */
  private sourceSpent(): void {
    const detail = 'the message stream was consumed by an earlier attempt and cannot be read again (pass a factory as envelope.message to allow retries on other servers)';
    this.opts.onEvent({ type: 'warning', message: detail });
    this.ledger.siteError(describe({ kind: 'local', reason: 'message-source', detail }, undefined));
  }

  /** The caller's TLS policy for a next hop (a throwing policy function is a configuration problem). */
  private policyFor(dest: Destination): TlsPolicy | { invalid: string } {
    try {
      return this.opts.tls(dest.nexthop);
    } catch (err) {
      return { invalid: err instanceof Error ? err.message : String(err) };
    }
  }

  /**
   * The destination label of a next hop (POOL-7): protocol, HELO name, the next hop as written,
   * the caller's TLS policy for it, and the sender when credentials are looked up (they may
   * depend on it). Undefined without a pool or with a failing policy function.
   */
  private destinationLabel(dest: Destination): string | undefined {
    if (!this.opts.pool) return undefined;
    const policy = this.policyFor(dest);
    if ('invalid' in policy) return undefined;
    const tls = JSON.stringify(policy, (k, v: unknown) =>
      v instanceof Uint8Array ? Buffer.from(v).toString('hex') : k === 'mtaSts' ? Boolean(v) : typeof v === 'function' ? String(v) : v,
    );
    return poolKey('destination', { protocol: this.opts.protocol, heloName: this.opts.heloName, nexthop: dest.nexthop, tls, ...(this.opts.auth ? { sender: this.env.from } : {}) });
  }

  /** The MTA-STS policy of a domain next hop, when the TLS policy asks for MTA-STS. */
  private async mtaSts(dest: Destination): Promise<MtaStsLookup | undefined> {
    if (dest.kind !== 'mx') return undefined;
    const policy = this.policyFor(dest);
    if ('invalid' in policy || !policy.mtaSts) return undefined;
    // API.md names the store `cache`; the module calls it `store`.
    const { cache, ...o } = typeof policy.mtaSts === 'object' ? (policy.mtaSts as Partial<MtaStsOptions> & { cache?: MtaStsOptions['store'] }) : {};
    if (cache) o.store = cache;
    const resolver = resolverFor(this.opts.resolver);
    if (!resolver.resolveTxt) {
      this.opts.onEvent({ type: 'warning', message: 'MTA-STS needs a resolver with resolveTxt; skipped' });
      return undefined;
    }
    let lookup: MtaStsLookup;
    try {
      lookup = await getMtaStsPolicy(dest.host, { ...o, resolver, ...(this.opts.signal ? { signal: this.opts.signal } : {}) });
    } catch (err) {
      if (this.aborted) return undefined; // the caller aborted: the loop ends right after
      throw err;
    }
    if (lookup.failure) this.opts.onEvent({ type: 'warning', message: `MTA-STS ${dest.host}: ${lookup.failure.resultType}: ${lookup.failure.detail}` });
    return lookup;
  }

  /**
   * The TLS decision for one server: the caller's policy, the DNSSEC status and TLSA records
   * for DANE, the MTA-STS policy. Undefined when the caller aborted.
   */
  private async tlsDecision(dest: Destination, server: Server, mxSecure: boolean, sts: MtaStsLookup | undefined): Promise<TlsDecision | undefined> {
    const policy = this.policyFor(dest);
    if ('invalid' in policy) return { ok: false, status: '4.7.5', reason: `client TLS configuration problem: ${policy.invalid}`, warnings: [] };
    const level = policy.level ?? 'may';
    let tlsa: TlsPolicyContext['tlsa'];
    if ((level === 'dane' || level === 'dane-only') && this.opts.dnsSupportLevel === 'dnssec' && server.kind === 'tcp' && server.host !== server.address) {
      tlsa = await this.lookupTlsa(server);
      if (this.aborted) return undefined;
    }
    const decision = evaluateTlsPolicy(policy, {
      protocol: this.opts.protocol,
      nexthop: dest.nexthop,
      nexthopDomain: dest.certName,
      host: server.host,
      port: server.kind === 'tcp' ? server.port : 0,
      unix: server.kind === 'unix',
      dnsSupportLevel: this.opts.dnsSupportLevel,
      mxSecure,
      ...(tlsa ? { tlsa } : {}),
      ...(sts?.policy ? { sts: sts.policy } : {}),
    });
    for (const w of decision.warnings) this.opts.onEvent({ type: 'warning', message: w });
    return decision;
  }

  /** TLSA at `_port._tcp.host` (RFC 7672 §2.2), only for a host whose address answer is DNSSEC-secure. */
  private lookupTlsa(server: Extract<Server, { kind: 'tcp' }>): Promise<TlsPolicyContext['tlsa']> {
    if (!server.addressSecure) return Promise.resolve(undefined); // host not signed: no TLSA lookup (Postfix)
    const name = `_${server.port}._tcp.${server.host}`;
    // One lookup per name per delivery, however many addresses the host has.
    let p = this.tlsaCache.get(name);
    if (!p) {
      p = this.queryTlsa(name, server.host);
      this.tlsaCache.set(name, p);
    }
    return p;
  }

  private readonly tlsaCache = new Map<string, Promise<TlsPolicyContext['tlsa']>>();

  private async queryTlsa(name: string, host: string): Promise<TlsPolicyContext['tlsa']> {
    const resolver = resolverFor(this.opts.resolver);
    if (!resolver.resolveTlsa) return { error: 'the resolver cannot look up TLSA records' };
    const server = { host };
    try {
      const answer = (await resolver.resolveTlsa(name, this.opts.signal ? { signal: this.opts.signal } : undefined)) as TlsaRecord[] & { authenticated?: boolean };
      return { records: answer, authenticated: answer.authenticated === true, base: server.host };
    } catch (err) {
      if (dnsErrorClass(err) === 'notfound') return { records: [], authenticated: false, base: server.host };
      return { error: `${name}: ${(err as { code?: string }).code ?? String(err)}` };
    }
  }

  private messageOldEnough(): boolean {
    const q = this.env.queuedAt;
    return q === undefined || Date.now() - q.getTime() >= MINIMAL_BACKOFF_MS;
  }

  private async attempt(
    dest: Destination,
    server: Server,
    decision: TlsOk,
    how: {
      /** An MTA-STS policy problem to report with the results decided here (RFC 8460). */
      stsFailure?: { resultType: string; detail: string } | undefined;
      /** Postfix FINAL_SERVER as set before the handshake. */
      finalBeforeHandshake: boolean;
      /** Called once the handshake completed; returns true when this session became final. */
      onHandshake: () => boolean;
      plainRetryAllowed: boolean;
      /** This address has the best MX preference of the list (Postfix SMTP_FEATURE_BEST_MX). */
      bestMx: boolean;
      /** A connection found by destination label (POOL-11), already leased. */
      leased?: { conn: Connection; endpointKey: string; probe: boolean };
      /** The destination label to file the first good session under (POOL-11). */
      label?: string;
    },
  ): Promise<{ retryPlaintext: boolean }> {
    const { opts, env } = this;
    const identity: ServerIdentity =
      server.kind === 'unix' ? { host: server.host, address: server.path } : { host: server.host, address: server.address, port: server.port };
    const address = server.kind === 'unix' ? server.path : server.address;
    const port = server.kind === 'unix' ? undefined : server.port;
    const startedAt = new Date();
    const protocolErrors: string[] = [];
    const record = (outcome: Attempt['outcome'], stage: string, why?: Why) => {
      const a: Attempt = { nexthop: dest.nexthop, host: server.host, address, outcome, stage, startedAt, endedAt: new Date() };
      if (protocolErrors.length > 0) a.protocolErrors = protocolErrors;
      if (port !== undefined) a.port = port;
      if (server.kind === 'tcp' && dest.kind === 'mx') a.preference = server.preference;
      if (why) {
        const d = describe(why, identity, opts);
        a.reason = d.reason;
        a.status = d.status;
      }
      this.attempts.push(a);
    };

    // SASL credentials for this server (smtp_sasl_password_maps: the caller's lookup by sender,
    // next hop and host), and a cached 535 for them (smtp_sasl_auth_cache_name).
    let credentials: SaslCredentials | undefined;
    let cached: string[] | undefined;
    if (opts.auth && server.kind === 'tcp') {
      try {
        credentials = await opts.auth({ sender: env.from, nexthop: dest.nexthop, host: server.host, port: server.port });
      } catch (err) {
        const why: Why = { kind: 'local', reason: 'sasl', detail: `SASL credential lookup failed: ${err instanceof Error ? err.message : String(err)}` };
        this.ledger.siteError(describe(why, identity, opts), identity);
        record('session-failed', 'auth', why);
        return { retryPlaintext: false };
      }
      if (credentials && opts.authCache) cached = await cachedFailure(opts.authCache, server.host, credentials, opts.authCacheTtl);
    }
    const hasCredentials = credentials !== undefined;

    // The pool (POOL-7, POOL-10): a kept connection with the same endpoint, TLS policy and
    // credentials is reused after an RSET probe; otherwise a new one is opened and kept.
    const pool = opts.pool;
    const keyInput = { protocol: opts.protocol, heloName: opts.heloName, nexthop: dest.nexthop, address, ...(port !== undefined ? { port } : {}), tls: sessionKey('', 0, decision), credentials };
    const endpointKey = poolKey('endpoint', keyInput);
    // The concurrency group (maxConnectionsPerDestination): the next hop, as Postfix's qmgr counts.
    const group = `${opts.protocol}\0${dest.nexthop}`;
    let leased = how.leased;
    // Not kept in `how`: closures of this delivery live as long as the connections it opens,
    // and must not hold the connection it found in the pool (a chain of every connection since).
    how.leased = undefined;
    if (leased && (leased.endpointKey !== endpointKey || !pool)) {
      // Other credentials for this sender and server: not this connection.
      pool?.release(leased.conn);
      leased = undefined;
    }
    let anySuccess = false;

    let finalServer = how.finalBeforeHandshake;
    let retryPlaintext = false;
    let opened = false;
    let lastFailure: Why | undefined;
    let aborted = false;
    let conn: Connection | undefined;
    let reused = false;
    let freshOnly = false;
    let left = this.ledger.left;
    const source = this.source;

    for (let round = 0; left.length > 0 && round < 3; round++) {
      // 1. A connection: reused from the pool, or opened here.
      reused = false;
      conn = undefined;
      // POOL-8: a connection that was idle is probed with RSET; a busy one has just worked.
      let probe = false;
      let lease: Lease | undefined;
      if (leased) {
        conn = leased.conn;
        reused = true;
        probe = leased.probe;
        leased = undefined;
      } else if (pool && !pool.closed) {
        lease = await pool.acquire({ destination: group, endpoint: endpointKey, pipelining: opts.transactionPipelining, fresh: freshOnly, signal: opts.signal });
        if (!lease) return { retryPlaintext: false }; // aborted while waiting
        if (lease.kind === 'reuse') {
          conn = lease.conn;
          reused = true;
          probe = lease.probe;
        }
      }
      if (!conn) {
        const o = await this.openConnection(dest, server, decision, how, identity, credentials, cached, record, protocolErrors, () => {
          if (how.onHandshake()) finalServer = true;
        });
        if (!o) {
          if (lease?.kind === 'open') lease.release();
          return { retryPlaintext: false };
        }
        conn = o;
        if (pool && !pool.closed && lease?.kind === 'open') {
          const tag: KeptSession = { server, decision, bestMx: how.bestMx, endpointKey };
          pool.add(conn, endpointKey, group, tag);
          lease.release();
        }
      } else {
        // A reused session counts toward the session limit at once (Postfix §1.5).
        if (how.onHandshake()) finalServer = true;
        opts.onEvent({ type: 'connected', host: server.host, address, ...(port !== undefined ? { port } : {}), reused: true, connection: conn.id });
      }
      const c = conn;

      // 2. The transactions: the recipients left, at most recipientLimit each (POOL-13); a
      // 452 4.5.3 is sent again in a further transaction while the server makes progress.
      const notSent: number[] = [];
      let queue = left;
      let firstOnConnection = true;
      while (queue.length > 0 && c.alive) {
        const batches: number[][] = [];
        // DSN-5/6: flags D and O go with one recipient per transaction (Postfix needs recipient limit 1).
        const perTransaction = opts.flags.deliveredTo || opts.flags.originalTo ? 1 : opts.recipientLimit;
        for (let i = 0; i < queue.length; i += perTransaction) batches.push(queue.slice(i, i + perTransaction));
        const tooMany: number[] = [];
        const runs = batches.map((batch, bi) => {
          let accepted = 0;
          const held: Array<{ index: number; why: Why; tls: TlsInfo | undefined; sts?: { resultType: TlsResultType; detail: string } }> = [];
          const apply = (index: number, why: Why, tls: TlsInfo | undefined, stsTesting?: { resultType: TlsResultType; detail: string }) => {
            if (why.kind !== 'success') lastFailure = why;
            else anySuccess = true;
            const described = describe(why, identity, opts);
            // After a TLS failure at level may, the same server is tried again in plaintext, so
            // this is not the final server for these recipients (Postfix RETRY_AS_PLAINTEXT).
            const tlsBroke = why.kind === 'local' && why.reason === 'tls-handshake';
            const brokeInTls = tls !== undefined && (why.kind === 'lost' || why.kind === 'timeout');
            // No plaintext retry when credentials exist: without AUTH it would turn into "relay access denied".
            const retry = !reused && how.plainRetryAllowed && !hasCredentials && (tlsBroke || brokeInTls) && !(source.kind === 'stream' && !source.reopenable && opened);
            if (retry) retryPlaintext = true;
            const caps = c.capabilities;
            this.ledger.outcome(index, described, {
              finalServer: finalServer && !retry,
              server: identity,
              deliveredOnSuccess: opts.protocol === 'lmtp' && opts.final && !(caps?.dsn ?? false),
              serverDsn: caps?.dsn ?? false,
              ...(tls ? { tls } : {}),
              ...(stsTesting ? { tlsFailure: stsTesting } : how.stsFailure ? { tlsFailure: how.stsFailure } : {}),
            });
          };
          let prefix: Uint8Array | undefined;
          try {
            prefix = this.prefixFor(batch);
          } catch (err) {
            // A rewrite that throws while the headers are made: 4.3.0, nothing sent (REW-5).
            const detail = `rewriteAddress failed: ${err instanceof Error ? err.message : String(err)}`;
            for (const index of batch) this.ledger.outcome(index, describe({ kind: 'local', reason: 'content-hook', detail }, undefined), { finalServer: true });
            return Promise.resolve();
          }
          const input: TransactionInput = {
            sender: this.wire.from,
            recipients: batch.map((index) => {
              const r = env.to[index]!;
              const address = this.wire.to[index]!;
              // ORCPT is the recipient as given when generic mapping changed it (Postfix orig_addr).
              const orcpt = r.orcpt ?? (address !== r.address ? `${/[^\x00-\x7f]/.test(r.address) ? 'utf-8' : 'rfc822'};${r.address}` : undefined);
              return {
                index,
                address,
                ...(r.notify !== undefined ? { notify: r.notify } : {}),
                ...(orcpt !== undefined ? { orcpt } : {}),
              };
            }),
            ...(prefix ? { prefix } : {}),
            ...(this.utf8Headers ? { utf8Headers: true } : {}),
            mime: { outputConversion: opts.mimeOutputConversion, boundaryLengthLimit: opts.mimeBoundaryLengthLimit, nestingLimit: opts.mimeNestingLimit, headerSizeLimit: opts.headerSizeLimit },
            ...(opts.headerCheck || opts.bodyCheck || opts.rewriteAddress
              ? {
                  hooks: {
                    ...(opts.headerCheck ? { headerCheck: opts.headerCheck } : {}),
                    ...(opts.bodyCheck ? { bodyCheck: opts.bodyCheck } : {}),
                    ...(opts.rewriteAddress ? { rewriteAddress: opts.rewriteAddress } : {}),
                  },
                }
              : {}),
            content: source.kind === 'bytes' ? { kind: 'bytes', bytes: source.bytes } : { kind: 'stream' },
            ...(env.size !== undefined ? { size: env.size } : {}),
            ...(env.body !== undefined ? { body: env.body } : {}),
            smtputf8: env.smtputf8,
            ...(env.dsn ? { dsn: env.dsn } : {}),
            requireTls: env.requireTls,
            ...(opts.xforward ? { xforward: opts.xforward } : {}),
            // POOL-8: a reused connection is probed with RSET in the same flight.
            ...(probe && firstOnConnection && bi === 0 ? { probe: true } : {}),
          };
          return c
            .send(input, {
              signal: opts.signal,
              onEvent: opts.onEvent,
              ...(source.kind === 'stream'
                ? {
                    openContent: () => {
                      opened = true;
                      return source.open();
                    },
                  }
                : {}),
              onOutcome: (index, why, tls, sts) => {
                if (why.kind === 'not-sent') {
                  notSent.push(index);
                  return;
                }
                if (why.kind === 'success') accepted++;
                // RFC 5321 §4.5.3.1.10: "452 too many recipients": held back, sent again below.
                if (why.kind === 'reply' && why.command === 'RCPT TO' && why.reply.code === 452 && (why.reply.status === '4.5.3' || /too many recipients/i.test(why.reply.lines.join(' ')))) {
                  held.push({ index, why, tls, ...(sts ? { sts } : {}) });
                  return;
                }
                apply(index, why, tls, sts);
              },
            })
            .then((summary) => {
              if (summary.aborted) aborted = true;
              if (held.length > 0) {
                if (accepted > 0 && c.reusable) tooMany.push(...held.map((h) => h.index));
                else for (const h of held) apply(h.index, h.why, h.tls, h.sts);
              }
            });
        });
        firstOnConnection = false;
        await Promise.all(runs);
        if (aborted || this.aborted) break;
        queue = tooMany;
      }
      if (opened && source.kind === 'stream' && !source.reopenable) this.contentSpent = true;

      // 3. The connection: back to the pool, or QUIT.
      const failure = c.engine.sessionFailure;
      if (credentials && opts.authCache && failure?.kind === 'reply' && failure.command === 'AUTH' && !failure.cached && failure.reply.code === 535) {
        try {
          await opts.authCache.set(authCacheKey(server.host, credentials.username), { time: Date.now(), secretHash: secretHash(server.host, credentials), reply: [...failure.reply.lines] }, opts.authCacheTtl);
        } catch {
          /* a failing cache never fails a delivery */
        }
      }
      if (c.engine.plaintextInjection && !protocolErrors.includes('plaintext-after-starttls')) {
        opts.onEvent({ type: 'protocol-error', host: server.host, address, message: 'plaintext received right after the 220 to STARTTLS was discarded' });
        protocolErrors.push('plaintext-after-starttls');
      }
      if (pool && !pool.closed && pool.has(c)) {
        // POOL-11: the first good session of a delivery is also filed under the destination label.
        let label: string | undefined;
        if (how.label !== undefined && anySuccess && !this.labelStored) {
          label = how.label;
          this.labelStored = true;
        }
        pool.release(c, label);
      } else {
        if (c.alive) c.quit();
        await c.closed;
      }

      // 4. Recipients that never reached the server (a stale pooled connection, or the
      // connection ended before their transaction started) go again on a fresh connection.
      left = notSent.filter((i) => !this.ledger.has(i));
      if (left.length === 0 || aborted || this.aborted || (source.kind === 'stream' && !source.reopenable && opened)) break;
      if (!reused && round > 0) {
        // A fresh connection that also did not get to them: they share its failure.
        const why: Why = c.engine.sessionFailure ?? { kind: 'lost', stage: 'sending MAIL FROM' };
        for (const i of left) this.ledger.outcome(i, describe(why, identity, opts), { finalServer, server: identity });
        break;
      }
      freshOnly = true;
    }

    const stage = conn?.engine.failedStage ?? 'quit';
    if (aborted) record('session-failed', stage, { kind: 'local', reason: 'aborted', detail: 'delivery aborted by the caller' });
    else if (conn?.engine.sessionFailure) record('session-failed', stage, conn.engine.sessionFailure);
    else record('completed', stage, lastFailure);
    return { retryPlaintext: retryPlaintext && !aborted };
  }

  /**
   * Connect (with the bind address), run wrapper-mode TLS, and start the session's handshake.
   * Resolves undefined when the connect (or the wrapper TLS) failed: that is recorded here.
   */
  private async openConnection(
    dest: Destination,
    server: Server,
    decision: TlsOk,
    how: { bestMx: boolean },
    identity: ServerIdentity,
    credentials: SaslCredentials | undefined,
    cached: string[] | undefined,
    record: (outcome: Attempt['outcome'], stage: string, why?: Why) => void,
    protocolErrors: string[],
    onReady: () => void,
  ): Promise<Connection | undefined> {
    const { opts } = this;
    const address = server.kind === 'unix' ? server.path : server.address;
    const port = server.kind === 'unix' ? undefined : server.port;
    opts.onEvent({ type: 'connect', nexthop: dest.nexthop, host: server.host, address, ...(port !== undefined ? { port } : {}) });
    const bind = server.kind === 'tcp' ? (server.family === 6 ? opts.bindAddress6 : opts.bindAddress) : undefined;
    const target = (localAddress?: string) =>
      server.kind === 'unix'
        ? { path: server.path }
        : { host: server.address, port: server.port, family: server.family, ...(localAddress ? { localAddress } : {}) };
    let conn = await connectSocket(target(bind), opts.timeouts.connect, opts.signal);
    if (!conn.ok && bind && conn.bindFailed) {
      // smtp_bind_address: a warning and an unbound connection, unless enforced (4.4.0, MX-22).
      if (opts.bindAddressEnforce) {
        const why: Why = { kind: 'connect', detail: `cannot bind to ${bind}: ${conn.detail}`, status: '4.4.0' };
        this.ledger.siteError(describe(why, identity, opts), identity);
        record('connect-failed', 'connect', why);
        return undefined;
      }
      opts.onEvent({ type: 'warning', message: `cannot bind to ${bind}: ${conn.detail}; connecting without it` });
      conn = await connectSocket(target(undefined), opts.timeouts.connect, opts.signal);
    }
    if (!conn.ok) {
      if (conn.aborted) return undefined;
      const why: Why = { kind: 'connect', detail: conn.detail };
      // A failed connect marks no recipient: it only becomes the last error (§1.1 step 8).
      this.ledger.siteError(describe(why, identity, opts), identity);
      opts.onEvent({ type: 'connect-failed', host: server.host, address, ...(port !== undefined ? { port } : {}), reason: conn.detail });
      record('connect-failed', 'connect', why);
      return undefined;
    }
    let socket: import('node:net').Socket = conn.socket;
    const local = { ...(socket.localAddress ? { localAddress: socket.localAddress } : {}), ...(socket.localPort ? { localPort: socket.localPort } : {}) };

    const secure = {
      decision,
      sessions: opts.tlsSessionCache && server.kind === 'tcp'
        ? { store: opts.tlsSessionCache, key: sessionKey(server.address, server.port, decision), ttlMs: opts.tlsSessionCacheTimeout }
        : undefined,
    };
    // Wrapper mode (TLS-21): the TLS handshake before the greeting.
    let wrapped: TlsInfo | undefined;
    let wrappedFailure: { detail: string; resultType: TlsResultType } | undefined;
    if (decision.wrapperMode) {
      const t = startTls(socket, secure);
      const r = await t.ready;
      if (!r.ok) {
        t.socket.destroy();
        const why: Why = { kind: 'local', reason: 'tls-handshake', detail: r.detail, tlsFailure: { resultType: 'validation-failure', detail: r.detail } };
        this.ledger.siteError(describe(why, identity, opts), identity);
        record('session-failed', 'tls', why);
        return undefined;
      }
      const check = checkPeer(r.peer, decision.check);
      wrapped = tlsInfo(t.socket, appliedLevel(decision), check.ok && check.verified);
      opts.onEvent({ type: 'tls', ...wrapped });
      if (!check.ok) wrappedFailure = { detail: check.detail, resultType: check.resultType };
      socket = t.socket;
    }

    const session = new ClientSession({
      protocol: opts.protocol,
      heloName: opts.heloName,
      alwaysSendEhlo: opts.alwaysSendEhlo,
      neverSendEhlo: opts.neverSendEhlo,
      skipQuitResponse: opts.skipQuitResponse,
      discardEhloKeywords: opts.discardEhloKeywords(address),
      lineLengthLimit: opts.lineLengthLimit,
      replyLineLimit: opts.replyLineLimit,
      maxReplyLines: opts.maxReplyLines,
      ...(opts.replyFilter ? { replyFilter: opts.replyFilter } : {}),
      quoteRfc821Envelope: opts.quoteRfc821Envelope,
      chunking: opts.chunking,
      bdatChunkSize: opts.bdatChunkSize,
      startTls: decision.startTls,
      inTls: decision.wrapperMode,
      tlsVerified: (wrapped?.verified ?? false) && decision.check.kind !== 'fingerprint',
      blockEarlyMailReply: decision.blockEarlyMailReply,
      sendDummyMailAuth: opts.sendDummyMailAuth,
      // The caller quits (or the pool keeps it) when its transactions are done.
      quitAfterTransaction: false,
      transactionPipelining: opts.transactionPipelining,
      ...(credentials
        ? {
            sasl: (caps: Capabilities, inTls: boolean, tlsVerified: boolean) => {
              if (cached) return { cached: parseReply(cached.join('\r\n')) };
              const choice = chooseMechanism(caps.auth, credentials, { tls: inTls, verified: tlsVerified, clientCertificate: decision.cert !== undefined, host: server.host, ...(port !== undefined ? { port } : {}) }, opts.sasl);
              return 'fail' in choice ? choice : choice.mechanism;
            },
          }
        : {}),
      // MX-7: only with loop detection on (SMTP, port 25, our addresses known).
      ...(opts.protocol === 'smtp' && port === 25 && opts.myAddresses.size > 0
        ? { loopCheck: { name: opts.heloName, nexthop: dest.certName, bestMx: how.bestMx } }
        : {}),
    });
    // Wrapper mode whose certificate failed the level's check: QUIT, nothing else.
    if (wrappedFailure) session.tlsNotVerified(wrappedFailure.detail, wrappedFailure.resultType);
    void protocolErrors;
    const connection = new Connection(socket, session, { timeouts: opts.timeouts, onEvent: opts.onEvent, secure, ...(wrapped ? { wrapped } : {}), onReady });
    opts.onEvent({ type: 'connected', host: server.host, address, ...(port !== undefined ? { port } : {}), ...local, connection: connection.id });
    return connection;
  }

}

/**
 * The session-cache key: the endpoint, SNI, level and everything the check depends on, so a
 * resumed session's kept verdict is only reused for the same check.
 */
function sessionKey(address: string, port: number, d: TlsOk): string {
  // No check and no trust anchors (levels none, may, encrypt without a CA): nothing to hash.
  const check = d.check.kind === 'none' ? '' : JSON.stringify(d.check, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
  const ca = d.ca === undefined ? '' : createHash('sha256').update(JSON.stringify([d.ca].flat().map((c) => (typeof c === 'string' ? c : Buffer.from(c).toString('base64'))))).digest('hex');
  // The client certificate is part of the identity (a connection authenticated with one
  // certificate is not reused for a caller with another); the key is never hashed in.
  const cert = d.cert === undefined ? '' : `cert:${typeof d.cert === 'string' ? d.cert : Buffer.from(d.cert).toString('base64')}`;
  const digest = check === '' && ca === '' && cert === '' ? '-' : createHash('sha256').update(`${check}\0${ca}\0${cert}`).digest('hex').slice(0, 32);
  return `${address}|${port}|${d.servername ?? ''}|${d.level}|${d.wrapperMode ? 'wrapped' : d.startTls}|${d.minVersion ?? ''}-${d.maxVersion ?? ''}|${d.ciphers ?? ''}|${digest}`;
}

/** What a pooled connection carries so that a destination-label hit needs no DNS lookup. */
interface KeptSession {
  server: Server;
  decision: TlsOk;
  bestMx: boolean;
  endpointKey: string;
}

function endpointOf(s: Server): string {
  return s.kind === 'unix' ? s.path : `${s.address}|${s.port}`;
}

function hostOf(dest: Destination): string {
  return dest.kind === 'unix' ? dest.path : dest.kind === 'address' ? dest.address : dest.host;
}

function badEnvelope(message: string): never {
  throw new MailwireError('EENVELOPE', message);
}

const NOTIFY = new Set(['SUCCESS', 'FAILURE', 'DELAY']);

function checkEnvelope(e: Envelope): CheckedEnvelope {
  if (typeof e !== 'object' || e === null) badEnvelope('envelope must be an object');
  if (typeof e.from !== 'string') badEnvelope("envelope.from must be a string ('' for the null sender)");
  if (!Array.isArray(e.to) || e.to.length === 0) badEnvelope('envelope.to must list at least one recipient');
  const to: Recipient[] = e.to.map((r, i) => {
    if (typeof r === 'string') return { address: r };
    if (typeof r !== 'object' || r === null || typeof r.address !== 'string') badEnvelope(`envelope.to[${i}] must be an address or { address }`);
    if (r.notify !== undefined) {
      const ok = r.notify === 'NEVER' || (Array.isArray(r.notify) && r.notify.length > 0 && r.notify.every((n) => NOTIFY.has(n)));
      if (!ok) badEnvelope(`envelope.to[${i}].notify must be 'NEVER' or a list of 'SUCCESS', 'FAILURE', 'DELAY'`);
    }
    if (r.orcpt !== undefined && typeof r.orcpt !== 'string') badEnvelope(`envelope.to[${i}].orcpt must be a string`);
    if (r.original !== undefined && (typeof r.original !== 'string' || /[\r\n\0]/.test(r.original))) badEnvelope(`envelope.to[${i}].original must be a string without CR, LF or NUL`);
    return r;
  });
  if (e.message === undefined || e.message === null) badEnvelope('envelope.message is required');
  if (e.size !== undefined && (!Number.isSafeInteger(e.size) || e.size < 0)) badEnvelope('envelope.size must be a non-negative integer');
  if (e.dsn !== undefined) {
    if (typeof e.dsn !== 'object' || e.dsn === null) badEnvelope('envelope.dsn must be an object');
    if (e.dsn.ret !== undefined && e.dsn.ret !== 'FULL' && e.dsn.ret !== 'HDRS') badEnvelope("envelope.dsn.ret must be 'FULL' or 'HDRS'");
    if (e.dsn.envid !== undefined && typeof e.dsn.envid !== 'string') badEnvelope('envelope.dsn.envid must be a string');
  }
  const smtputf8 = e.smtputf8 ?? 'auto';
  if (smtputf8 !== 'auto' && typeof smtputf8 !== 'boolean') badEnvelope("envelope.smtputf8 must be a boolean or 'auto'");
  if (e.body !== undefined && e.body !== '7BIT' && e.body !== '8BITMIME') badEnvelope("envelope.body must be '7BIT' or '8BITMIME'");
  if (e.queuedAt !== undefined && !(e.queuedAt instanceof Date)) badEnvelope('envelope.queuedAt must be a Date');
  const checked: CheckedEnvelope = {
    from: e.from,
    to,
    given: to.map((r) => r.address),
    message: e.message,
    smtputf8,
    requireTls: e.requireTls === true,
  };
  if (e.size !== undefined) checked.size = e.size;
  if (e.dsn) checked.dsn = e.dsn;
  if (e.body) checked.body = e.body;
  if (e.queuedAt) checked.queuedAt = e.queuedAt;
  return checked;
}

function checkDestinations(list: Destination[]): Destination[] {
  if (!Array.isArray(list) || list.length === 0) throw new MailwireError('EDESTINATION', 'empty destination list');
  for (const d of list) {
    if (typeof d !== 'object' || d === null || !['mx', 'host', 'address', 'unix'].includes((d as Destination).kind)) {
      throw new MailwireError('EDESTINATION', 'destination entries must come from parseDestination()');
    }
  }
  return list;
}

/** An address with its local part quoted as RFC 822 needs (Postfix quote_822_local); as given when it does not parse. */
function quote822(address: string): string {
  if (address === '') return '';
  const p = parseMailbox(address, 'recipient');
  if (!p.ok) return address;
  const f = formatMailbox(p, true);
  return f.ok ? f.text : address;
}
