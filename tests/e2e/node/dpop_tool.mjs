// DPoP clients for the end-to-end tests, made by libraries independent of proofgate: npm `jose`
// makes keys and signs access tokens, npm `dpop` makes RFC 9449 proofs.
//
// One long-lived process serves a whole test session: each line on stdin is a JSON array of
// operations, answered by one line on stdout, {"results": [...]} or {"error": "..."}:
//   {"op": "keypair", "alg": "Ed25519" | "ES256"}
//       -> {"private": JWK, "public": JWK, "jkt": RFC 7638 thumbprint}
//   {"op": "token", "alg": "EdDSA" | "ES256", "key": private JWK, "kid": str, "claims": {...}}
//       -> {"token": compact JWT}   (typ "at+jwt" unless "typ" is given)
//   {"op": "proof", "alg": "Ed25519" | "ES256", "key": private JWK, "public": public JWK,
//    "htu": str, "htm": str, "nonce"?: str, "token"?: str, "claims"?: {...}, "iat"?: int}
//       -> {"proof": compact JWS}   ("iat" pins the library's clock, for proofs made in the past)
import * as DPoP from 'dpop';
import * as jose from 'jose';
import * as readline from 'node:readline';

const WEBCRYPTO = {
  Ed25519: { name: 'Ed25519' },
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
};

async function keypair(op) {
  const { privateKey, publicKey } = await jose.generateKeyPair(op.alg, { extractable: true });
  const pub = await jose.exportJWK(publicKey);
  return {
    private: await jose.exportJWK(privateKey),
    public: pub,
    jkt: await jose.calculateJwkThumbprint(pub, 'sha256'),
  };
}

async function token(op) {
  const key = await jose.importJWK(op.key, op.alg);
  const jwt = await new jose.SignJWT(op.claims)
    .setProtectedHeader({ alg: op.alg, kid: op.kid, typ: op.typ ?? 'at+jwt' })
    .sign(key);
  return { token: jwt };
}

async function proof(op) {
  const algorithm = WEBCRYPTO[op.alg];
  const privateKey = await crypto.subtle.importKey('jwk', op.key, algorithm, false, ['sign']);
  const publicKey = await crypto.subtle.importKey('jwk', op.public, algorithm, true, ['verify']);
  // The library stamps iat from the clock and lets no claim override it: move the clock.
  const realNow = Date.now;
  if (op.iat !== undefined) Date.now = () => op.iat * 1000;
  const value = await DPoP.generateProof(
    { privateKey, publicKey },
    op.htu,
    op.htm,
    op.nonce ?? undefined,
    op.token ?? undefined,
    op.claims ?? undefined,
  ).finally(() => {
    Date.now = realNow;
  });
  return { proof: value };
}

const OPS = { keypair, token, proof };

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === '') continue;
  let answer;
  try {
    const results = [];
    for (const op of JSON.parse(line)) {
      const run = OPS[op.op];
      if (!run) throw new Error(`unknown op ${op.op}`);
      results.push(await run(op));
    }
    answer = { results };
  } catch (e) {
    answer = { error: String(e?.stack ?? e) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
