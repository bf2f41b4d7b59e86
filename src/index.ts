/**
 * mailwire: Postfix-grade SMTP/LMTP delivery as a library.
 *
 * `deliver()` is the one call; the pure modules behind it are exported too, each usable
 * without a socket.
 * @packageDocumentation
 */
export { deliver } from './deliver.js';
export { MailwireError, type MailwireErrorCode } from './errors.js';
export type { Envelope, Recipient, MessageSource, DsnNotify } from './envelope.js';
export type { DeliverOptions, Timeouts, TlsPolicy, TlsLevel, OptionRow } from './options.js';
export { OPTION_TABLE } from './options.js';
export type { DeliveryEvent } from './events.js';
export type { DeliveryResult, RecipientResult, Attempt, DeliveryAction, ReplySummary } from './results/delivery-result.js';

// destination
export type { Destination } from './destination/destination.js';
export { parseDestination, type ParseDestinationOptions } from './destination/parse-destination.js';
export { KNOWN_TCP_PORTS } from './destination/known-tcp-ports.js';

// routing
export { Resolver, DnsError, type DnsResolver, type MxRecord, type TlsaRecord, type LookupOptions, type Answer, type ResolverOptions } from './routing/resolver.js';
export { orderMxHosts, balanceInetProtocols, type MxAddress, type OrderOptions } from './routing/mx-order.js';

// protocol (pure, sans-IO)
export type { Reply } from './protocol/reply.js';
export { ReplyParser, parseReply, type ReplyParserOptions } from './protocol/reply-parser.js';
export { parseEhlo, type Capabilities, type ParseEhloOptions } from './protocol/ehlo-parser.js';
export { encodeMailFrom, encodeRcptTo, type MailFromParams, type RcptToParams, type EncodeResult } from './protocol/command-encoder.js';
export { encodeXtext, decodeXtext, encodeUtf8AddrXtext } from './protocol/xtext.js';
export { ContentEncoder, encodeContent, type ContentEncoderOptions } from './protocol/content-encoder.js';
export {
  ClientSession,
  type SessionConfig,
  type TransactionInput,
  type SessionEvent,
  type Stage,
  type CommandKind,
} from './protocol/client-session.js';
export type { Why, LocalReason, RepliedCommand } from './protocol/why.js';
export type { SaslMechanism } from './protocol/sasl-exchange.js';
export { isEnhancedStatus, leadingEnhancedStatus, replyStatus, statusClass } from './protocol/enhanced-status.js';

// sasl
export type { SaslCredentials } from './sasl/credentials.js';
export { plain, login, cramMd5, scram, oauthBearer, xoauth2, external, anonymous } from './sasl/mechanisms.js';
export { chooseMechanism, securityOptionsFor, type SaslOptions, type SecurityOption, type Connection as SaslConnection } from './sasl/choose.js';
export { MemoryAuthCache, type AuthCacheStore, type AuthCacheEntry } from './sasl/auth-cache.js';

// tls
export { evaluateTlsPolicy, parseProtocols, type TlsPolicyContext, type TlsDecision, type TlsCheck } from './tls/tls-policy.js';
export { verifyDane, usableTlsa, tlsaAssociation, type DaneResult, type DaneCheck } from './tls/dane.js';
export { getMtaStsPolicy, parseStsPolicy, parseStsTxt, mxMatchesPolicy, MemoryMtaStsStore, type MtaStsPolicy, type MtaStsOptions, type MtaStsStore, type MtaStsLookup } from './tls/mta-sts.js';
export { Pool, type PoolOptions, type PoolStats } from './pool/pool.js';
export { poolKey, type PoolKeyInput } from './pool/pool-key.js';
export { MemoryTlsSessionStore, type TlsSessionStore, type TlsSessionEntry } from './tls/session-cache.js';
export type { TlsResultType } from './protocol/why.js';

// results
export { RecipientLedger, type OutcomeContext, type LedgerOptions, type DeliveryStatusFilter } from './results/ledger.js';
export { toDsnFields, renderDsnFields, type DsnRecipientFields, type DsnFieldsContext } from './results/dsn-fields.js';
export { buildDsn, type DsnOptions, type BuiltDsn } from './results/dsn-report.js';
// content (pure): Postfix's MIME state machine with the content hooks and the 8BITMIME downgrade
export type { CheckAction, HeaderCheck, HeaderLine, HeaderPart, BodyCheck, BodyLine, RewriteAddress, DeliveryFlags, Xforward } from './content/hooks.js';
export { MimeState, MimeDowngrade, downgradeMime, MimeConversionError, ContentHookError, type MimeStateOptions, type MimeDowngradeOptions, type CheckReport } from './content/mime-state.js';
export { genericMap, type GenericMapOptions } from './content/generic-map.js';
export { headerCheckTable, bodyCheckTable } from './content/check-table.js';
export { describe as describeOutcome, type Described, type DescribeOptions, type ServerIdentity } from './results/describe.js';
