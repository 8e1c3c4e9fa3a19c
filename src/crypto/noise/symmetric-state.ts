import { CipherState } from './cipher-state.js';
import { HASH_LEN } from './constants.js';
import { hkdf2, sha256 } from './hash.js';

/**
 * SymmetricState (Noise section 5.2) for SHA256 / ChaChaPoly: the chaining
 * key ck, the handshake hash h and the CipherState they key.
 */
export class SymmetricState {
  readonly #cipher = new CipherState();
  #ck: Buffer;
  #h: Buffer;

  /** InitializeSymmetric(protocol_name). */
  constructor(protocolName: string) {
    const name = Buffer.from(protocolName, 'ascii');
    if (name.length <= HASH_LEN) {
      this.#h = Buffer.alloc(HASH_LEN);
      name.copy(this.#h);
    } else {
      this.#h = sha256(name);
    }
    this.#ck = Buffer.from(this.#h);
  }

  /** MixKey(input_key_material): new ck and a new cipher key. */
  mixKey(inputKeyMaterial: Buffer): void {
    const [ck, tempK] = hkdf2(this.#ck, inputKeyMaterial);
    this.#ck = ck;
    this.#cipher.initializeKey(tempK);
  }

  /** MixHash(data): h = HASH(h || data). */
  mixHash(data: Buffer): void {
    this.#h = sha256(this.#h, data);
  }

  hasKey(): boolean {
    return this.#cipher.hasKey();
  }

  /** EncryptAndHash(plaintext). */
  encryptAndHash(plaintext: Buffer): Buffer {
    const ciphertext = this.#cipher.encryptWithAd(this.#h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  /** DecryptAndHash(ciphertext): throws ERR_NOISE_DECRYPT on a bad tag. */
  decryptAndHash(ciphertext: Buffer): Buffer {
    const plaintext = this.#cipher.decryptWithAd(this.#h, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  /** Split(): the two transport CipherStates, c1 (initiator to responder) and c2. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf2(this.#ck, Buffer.alloc(0));
    return [new CipherState(k1), new CipherState(k2)];
  }

  /** A copy of h. */
  get handshakeHash(): Buffer {
    return Buffer.from(this.#h);
  }
}
