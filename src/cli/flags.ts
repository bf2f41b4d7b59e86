/**
 * The flags of `mailwire`, as one table: the parser (args.ts) reads it, and `--help` is
 * generated from it, so every flag that parses is documented.
 */

export type FlagGroup = 'Envelope' | 'Message' | 'Connection' | 'TLS' | 'Authentication' | 'Output';

export interface FlagSpec {
  /** Long name, without the dashes. */
  name: string;
  /** One-letter short form, without the dash. */
  short?: string;
  /** Other long names. */
  aliases?: string[];
  /** The value's placeholder in --help; absent for a boolean flag. */
  value?: string;
  /** May be given more than once (values accumulate). */
  repeat?: boolean;
  group: FlagGroup;
  help: string;
}

export const FLAGS: readonly FlagSpec[] = [
  { name: 'from', short: 'f', value: 'ADDRESS', group: 'Envelope', help: "Envelope sender (MAIL FROM); '' or '<>' is the null sender. Default: USER@HOSTNAME." },
  { name: 'to', short: 't', value: 'ADDRESS', repeat: true, group: 'Envelope', help: 'Recipient (RCPT TO). Repeat it, or separate addresses with commas. At least one.' },

  { name: 'data', short: 'd', value: 'FILE|-', group: 'Message', help: "The message (RFC 5322: header fields, an empty line, the body) from FILE, or from standard input with '-'. Without --data a small test message is built (Date, Message-ID, From, To, Subject)." },
  { name: 'header', value: "'NAME: VALUE'", repeat: true, group: 'Message', help: 'Add a header field; it replaces the fields of that name in the message (built or --data). Repeat it for more.' },
  { name: 'subject', value: 'TEXT', group: 'Message', help: "The Subject (as --header 'Subject: TEXT'). Default for a built message: 'test DATE'." },
  { name: 'body', value: 'TEXT', group: 'Message', help: "Body of the built message (not with --data). Default: 'This is a test mailing from mailwire.'" },

  { name: 'port', short: 'p', value: 'PORT', group: 'Connection', help: 'Port for a destination that names none: a number or a service name (smtp, submission, submissions, smtps, lmtp). Default 25, LMTP 24.' },
  { name: 'lmtp', group: 'Connection', help: 'Speak LMTP (RFC 2033) instead of SMTP; destinations inet:HOST[:PORT] and unix:/PATH.' },
  { name: 'helo', aliases: ['ehlo', 'lhlo'], value: 'NAME', group: 'Connection', help: "Name sent in EHLO/HELO/LHLO. Default: this host's name." },
  { name: 'ipv4', short: '4', group: 'Connection', help: 'Use IPv4 only.' },
  { name: 'ipv6', short: '6', group: 'Connection', help: 'Use IPv6 only.' },
  { name: 'timeout', value: 'DURATION', group: 'Connection', help: 'Deadline for the whole delivery: 30 (seconds), 500ms, 45s, 2m, 1h. Recipients not finished by then are delayed 4.4.7 (exit 75). Default: none beyond Postfix\'s per-reply limits.' },

  { name: 'tls', value: 'LEVEL', group: 'TLS', help: 'Postfix smtp_tls_security_level: none, may (default: STARTTLS when offered, unverified), encrypt, verify, secure, dane, dane-only, fingerprint.' },
  { name: 'tls-ca', value: 'FILE', group: 'TLS', help: "Trust anchors (PEM) for verify and secure. Default: Node's root store." },
  { name: 'tls-fingerprint', value: 'DIGEST', repeat: true, group: 'TLS', help: "SHA-256 digest of the server's certificate or public key (AB:CD:...); implies --tls fingerprint. Repeat for more." },
  { name: 'tls-on-connect', group: 'TLS', help: 'Implicit TLS from the first octet (SMTPS, port 465); level encrypt unless a stronger one is given.' },

  { name: 'auth-user', value: 'NAME', group: 'Authentication', help: 'SASL username: authenticate (AUTH). The password comes from --auth-password-file, --auth-password-env or, on a terminal, a prompt; never from the command line.' },
  { name: 'auth-password-file', value: 'FILE', group: 'Authentication', help: 'Read the password from the first line of FILE.' },
  { name: 'auth-password-env', value: 'VAR', group: 'Authentication', help: 'Read the password from the environment variable VAR.' },
  { name: 'auth-mech', value: 'LIST', group: 'Authentication', help: 'Only these SASL mechanisms, e.g. PLAIN,LOGIN. Default: the strongest one offered (SCRAM > CRAM-MD5 > PLAIN > LOGIN); PLAIN and LOGIN only over TLS.' },

  { name: 'verbose', short: 'v', group: 'Output', help: 'Print the transcript on stderr: "C:" client lines, "S:" server lines, "*" events. Credentials are redacted.' },
  { name: 'quiet', short: 'q', group: 'Output', help: 'Print no table; only the exit status tells.' },
  { name: 'json', group: 'Output', help: 'Print the whole result (recipients and attempts) as JSON on stdout instead of the table.' },
  { name: 'help', short: 'h', group: 'Output', help: 'Print this help and exit.' },
  { name: 'version', group: 'Output', help: 'Print the version and exit.' },
];

/** Flags that exist in other tools but are refused here, with the reason. */
export const REFUSED_FLAGS: Readonly<Record<string, string>> = {
  'auth-password': 'a password on the command line is visible to every user of this host (ps, shell history); use --auth-password-file FILE or --auth-password-env VAR',
  password: 'a password on the command line is visible to every user of this host (ps, shell history); use --auth-password-file FILE or --auth-password-env VAR',
  'auth-pass': 'a password on the command line is visible to every user of this host (ps, shell history); use --auth-password-file FILE or --auth-password-env VAR',
};

const WIDTH = 80;
const LEFT = 34;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** The left column of a flag in --help: `-f, --from ADDRESS`. */
export function flagSynopsis(f: FlagSpec): string {
  const names = [...(f.short !== undefined ? [`-${f.short}`] : []), `--${f.name}`, ...(f.aliases ?? []).map((a) => `--${a}`)];
  return (f.short === undefined ? '    ' : '') + names.join(', ') + (f.value !== undefined ? ` ${f.value}` : '');
}

function entry(left: string, help: string): string {
  const body = wrap(help, WIDTH - LEFT);
  const pad = ' '.repeat(LEFT);
  const head = `  ${left}`;
  const first = head.length < LEFT - 1 ? head.padEnd(LEFT) + (body[0] ?? '') : `${head}\n${pad}${body[0] ?? ''}`;
  return [first, ...body.slice(1).map((l) => pad + l)].join('\n');
}

const GROUPS: readonly FlagGroup[] = ['Envelope', 'Message', 'Connection', 'TLS', 'Authentication', 'Output'];

/** The text of `mailwire --help`. */
export function helpText(): string {
  const out: string[] = [
    'Usage: mailwire [FLAGS] --to ADDRESS [DESTINATION]',
    '',
    "Deliver one message by SMTP or LMTP as Postfix's smtp(8)/lmtp(8) would, and",
    'print one result per recipient: recipient, action, status, remote MTA, reason.',
    '',
    'Destination (Postfix next-hop syntax):',
    entry('example.org[:PORT]', 'MX lookup, each MX host at PORT (default 25).'),
    entry('[mx.example.org][:PORT]', 'That host, no MX lookup; [192.0.2.1], [ipv6:2001:db8::1]:25 for addresses.'),
    entry('inet:HOST[:PORT], unix:/PATH', 'LMTP over TCP (default port 24) or a unix socket (with --lmtp).'),
    entry('a.example, [b.example]:2525', 'Several next hops, tried in order (quote the list).'),
    entry('(none)', 'The recipients\' domain (MX lookup), when they all share one.'),
  ];
  for (const g of GROUPS) {
    out.push('', `${g}:`);
    for (const f of FLAGS.filter((x) => x.group === g)) out.push(entry(flagSynopsis(f), f.help));
  }
  out.push(
    '',
    'Exit status (sysexits):',
    entry('0', 'every recipient delivered or relayed'),
    entry('75 EX_TEMPFAIL', 'some recipients delayed (try again later), none failed'),
    entry('69 EX_UNAVAILABLE', 'at least one recipient failed'),
    entry('65 EX_DATAERR', 'the message cannot be read or is not a message'),
    entry('66 EX_NOINPUT', 'a --tls-ca or --auth-password-file file cannot be read'),
    entry('64 EX_USAGE', 'bad flags, values or destination syntax'),
    entry('70 EX_SOFTWARE', 'internal error'),
    '',
    'Examples:',
    '  # a test message to the MX hosts of example.net:',
    '  mailwire --to alice@example.net',
    '  # a file, through a submission server, TLS verified, authenticated:',
    "  mailwire -f me@example.org -t bob@example.net --data msg.eml --tls secure \\",
    "      --auth-user me --auth-password-file ~/.smtp-pw '[smtp.example.net]:587'",
    '  # standard input into Dovecot LMTP:',
    '  mailwire --lmtp -t alice@example.test --data - unix:/run/dovecot/lmtp <msg.eml',
    '  # the transcript, a 30 s deadline:',
    "  mailwire -v --timeout 30s -t bob@example.net --subject hi '[127.0.0.1]:2525'",
    '',
  );
  return out.join('\n');
}
