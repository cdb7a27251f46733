//! The two primes of an RSA key (sprig's `genPrivateKey`, `genCA`, …), searched for on several
//! cores at once.
//!
//! A key's time is its prime search's: random candidates are drawn until one is prime, so one
//! 4,096-bit key (bitnami's etcd asks sprig's `genPrivateKey` for one on every render) takes
//! from a fraction of a second to a few. Each core searches for primes of half the key's size
//! and the first two found, wherever they were found, make the key, as Go's `rsa.GenerateKey`
//! makes one from two primes it drew: two cores find two primes in about the time one finds
//! one. Each candidate is drawn afresh (aws-lc's `RAND_bytes`, the top two bits set as in Go's
//! `rand.Prime`), so which search found a prime, or after how many candidates, says nothing of
//! it: the key is distributed as one search's would be.
//!
//! A candidate with a factor below 2^16 is put aside here (`SmallPrimes`); the others go to
//! aws-lc's Miller-Rabin test (`BN_primality_test`, with its count of rounds for the size).
//! aws-lc's own search (`BN_generate_prime_ex`) divides by its first 2,048 primes (1,024 for
//! primes of up to 1,024 bits) one at a time in constant time, about a quarter of its time,
//! and lets through an eighth more candidates to the test (a quarter more of 1,024 bits) than
//! the 6,541 primes below 2^16 do. Release build, two cores, keys
//! one after another: a 4,096-bit key took 0.39 s on average and takes 0.28 s, a 2,048-bit one
//! 41 ms and 30 ms. The rest is aws-lc's test: one round on each composite, and at least 16 on
//! the prime (its size asks for four of 2,048 bits, five of 1,024; the others hide in time how
//! many of the random bases were usable). aws-lc's variable-time test (`BN_enhanced_miller_rabin_primality_test`) takes 11 ms
//! on a 2,048-bit prime where that takes 75, but a third more on each composite (a gcd a
//! round), so a prime would come no sooner.
//!
//! Once two primes are found, the searches stop before their next candidate, or within a
//! prime's Miller-Rabin rounds through aws-lc's callback.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use aws_lc_sys as ffi;
use zeroize::Zeroizing;

/// At most this many searches at once: beyond, each adds little and takes a core from the rest.
const SEARCHES: usize = 4;

/// The fewest bits a prime is searched for with: every odd prime below 2^16 is a factor the
/// search puts aside, and no RSA key's prime is anywhere near as small.
pub const MIN_BITS: u32 = 64;

/// The public exponent the primes suit, Go's: a prime, so a prime p suits it unless p - 1 is a multiple of it.
pub const EXPONENT: u32 = 65537;

/// Searches at once: [`SEARCHES`], or one in a render worker ([`one_search_at_a_time`]).
static ALLOWED: AtomicUsize = AtomicUsize::new(SEARCHES);

/// From now on, each key is one search on the calling thread. A render worker asks this: a
/// tenant's render then takes one core, as its templates do, and a chart that makes keys in
/// a loop cannot take the cores of other tenants' renders until its deadline.
pub fn one_search_at_a_time() {
    ALLOWED.store(1, Ordering::Relaxed);
}

/// How many searches a key gets: one a core, up to what is allowed.
fn searches() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from).min(ALLOWED.load(Ordering::Relaxed))
}

/// The primes found so far (little-endian bytes), and whether there are two.
struct Found {
    primes: Mutex<Vec<Zeroizing<Vec<u8>>>>,
    enough: AtomicBool,
}

/// The first two distinct primes of `bits` found that suit [`EXPONENT`], little-endian, or
/// `None` when aws-lc failed or `bits` is below [`MIN_BITS`].
pub fn two_primes(bits: u32) -> Option<[Zeroizing<Vec<u8>>; 2]> {
    two_primes_in(bits, searches())
}

/// [`two_primes`] by this many searches at once (one on the calling thread).
fn two_primes_in(bits: u32, searches: usize) -> Option<[Zeroizing<Vec<u8>>; 2]> {
    if bits < MIN_BITS {
        return None;
    }
    let found = Found { primes: Mutex::new(Vec::new()), enough: AtomicBool::new(false) };
    let wider;
    let small_primes = match SmallPrimes::shared(words(bits)) {
        Some(shared) => shared,
        None => {
            wider = SmallPrimes::new(words(bits));
            &wider
        }
    };
    if searches <= 1 {
        search(bits, small_primes, &found);
    } else {
        std::thread::scope(|scope| {
            // A thread that cannot be started (a render's memory limit counts its stack) is one
            // search fewer; aws-lc's test needs little stack.
            let start = || {
                std::thread::Builder::new()
                    .stack_size(256 << 10)
                    .spawn_scoped(scope, || search(bits, small_primes, &found))
            };
            let _others: Vec<_> = (1..searches).filter_map(|_| start().ok()).collect();
            search(bits, small_primes, &found);
        });
    }
    // Fewer than two when every search failed.
    let mut primes = found.primes.into_inner().ok()?;
    let q = primes.pop()?;
    let p = primes.pop()?;
    Some([p, q])
}

/// Primes until two are found, here or by another search, or until aws-lc fails.
fn search(bits: u32, small_primes: &SmallPrimes, found: &Found) {
    while !found.enough.load(Ordering::Relaxed) {
        let Some(Some(prime)) = prime(bits, small_primes, &found.enough) else { return };
        let Ok(mut primes) = found.primes.lock() else { return };
        if primes.len() < 2 && !primes.contains(&prime) {
            primes.push(prime);
        }
        if primes.len() == 2 {
            found.enough.store(true, Ordering::Relaxed);
        }
    }
}

/// The 32-bit words of a number of `bits`.
fn words(bits: u32) -> usize {
    bits.div_ceil(32) as usize
}

/// The words of this many bits [`SmallPrimes::shared`] has: a 4,096-bit key's primes, the
/// largest sprig asks for.
const SHARED_WORDS: usize = 64;

/// The odd primes below 2^16, each with what it takes to tell whether it divides a number of
/// up to `words` 32-bit words: 2^(32 i) mod p for each word i, so that the sum of the words
/// times these (under 2^54 for 64 words) is congruent to the number mod p, and p's inverse mod
/// 2^64, so that p divides that sum exactly when the sum times the inverse is at most
/// (2^64 - 1) / p. The
/// test then takes the same time for every prime candidate, as aws-lc's constant-time trial
/// division does (a prime is the secret; a composite is thrown away).
struct SmallPrimes {
    words: usize,
    /// `words` residues a prime, prime after prime.
    residues: Vec<u16>,
    inverses: Vec<u64>,
    bounds: Vec<u64>,
}

impl SmallPrimes {
    /// The table for numbers of up to [`SHARED_WORDS`], made once a process (0.8 MB, 0.7
    /// ms), or `None` for wider ones.
    fn shared(words: usize) -> Option<&'static SmallPrimes> {
        static SHARED: OnceLock<SmallPrimes> = OnceLock::new();
        (words <= SHARED_WORDS).then(|| SHARED.get_or_init(|| SmallPrimes::new(SHARED_WORDS)))
    }

    fn new(words: usize) -> SmallPrimes {
        const LIMIT: usize = 1 << 16;
        let mut composite = vec![false; LIMIT];
        let mut table = SmallPrimes { words, residues: Vec::new(), inverses: Vec::new(), bounds: Vec::new() };
        for n in 3..LIMIT {
            if composite[n] || n.is_multiple_of(2) {
                continue;
            }
            (n * n..LIMIT).step_by(2 * n).for_each(|multiple| composite[multiple] = true);
            let p = n as u32;
            // a mod p for a below 2^32 by two multiplications, not a division (Lemire, Kaser and
            // Kurz, "Faster remainder by direct computation").
            let reciprocal = u64::MAX / u64::from(p) + 1;
            let modulo = |a: u32| ((u128::from(reciprocal.wrapping_mul(u64::from(a))) * u128::from(p)) >> 64) as u32;
            // Four chains of powers, each stepping by 2^128, run side by side where one chain
            // waits on its every product: the table in 0.7 ms, not 1.4 (2.3 with divisions).
            let word = ((1u64 << 32) % u64::from(p)) as u32;
            let square = modulo(word * word);
            let cube = modulo(square * word);
            let step = modulo(square * square);
            let mut powers = [1, word, square, cube];
            let start = table.residues.len();
            table.residues.resize(start + words, 0);
            for residues in table.residues[start..].chunks_mut(powers.len()) {
                for (residue, power) in residues.iter_mut().zip(&mut powers) {
                    *residue = *power as u16;
                    *power = modulo(*power * step);
                }
            }
            // Newton's iteration doubles the correct low bits of an odd number's inverse:
            // p is its own inverse mod 2^3, so five steps give 96 bits.
            let mut inverse = u64::from(p);
            for _ in 0..5 {
                inverse = inverse.wrapping_mul(2u64.wrapping_sub(u64::from(p).wrapping_mul(inverse)));
            }
            table.inverses.push(inverse);
            table.bounds.push(u64::MAX / u64::from(p));
        }
        table
    }

    /// Whether an odd prime below 2^16 divides the number whose 32-bit words, least
    /// significant first, are `number` (at most the table's `words` of them).
    fn divide(&self, number: &[u32]) -> bool {
        debug_assert!(number.len() <= self.words, "a table of {} words for {}", self.words, number.len());
        let rows = self.residues.chunks_exact(self.words);
        rows.zip(&self.inverses).zip(&self.bounds).any(|((row, &inverse), &bound)| {
            let sum: u64 = number.iter().zip(row).map(|(&word, &residue)| u64::from(word) * u64::from(residue)).sum();
            sum.wrapping_mul(inverse) <= bound
        })
    }
}

/// aws-lc's callback, called as a prime's Miller-Rabin rounds go on: 0 stops the test.
unsafe extern "C" fn go_on(_event: c_int, _n: c_int, callback: *mut ffi::BN_GENCB) -> c_int {
    // SAFETY: the argument is the `enough` flag `prime` set, which outlives the test.
    let enough = unsafe { &*(ffi::BN_GENCB_get_arg(callback) as *const AtomicBool) };
    c_int::from(!enough.load(Ordering::Relaxed))
}

/// The 32-bit words of a number's little-endian bytes, least significant first.
fn read_words(bytes: &[u8], words: &mut [u32]) {
    for (word, bytes) in words.iter_mut().zip(bytes.chunks(4)) {
        *word = bytes.iter().rev().fold(0, |word, &byte| word << 8 | u32::from(byte));
    }
}

/// A random number of `bits` (little-endian bytes), with the top two bits and the lowest set.
fn shape(candidate: &mut [u8], bits: u32) {
    let unused = candidate.len() as u32 * 8 - bits;
    if let Some(top) = candidate.last_mut() {
        *top &= 0xff >> unused;
    }
    for bit in [bits - 1, bits - 2, 0] {
        candidate[(bit / 8) as usize] |= 1 << (bit % 8);
    }
}

/// One prime of `bits` that suits the exponent (little-endian bytes): `Some(None)` when
/// stopped because `enough` was set, `None` when aws-lc failed.
fn prime(bits: u32, small_primes: &SmallPrimes, enough: &AtomicBool) -> Option<Option<Zeroizing<Vec<u8>>>> {
    let mut candidate = Zeroizing::new(vec![0u8; bits.div_ceil(8) as usize]);
    let mut number = Zeroizing::new(vec![0u32; words(bits)]);
    // SAFETY: each pointer is checked before use and freed once, after its last use;
    // `candidate` holds the length `RAND_bytes` and `BN_le2bn` are given; the callback's
    // argument outlives `BN_primality_test`, which alone calls it.
    unsafe {
        let (prime, context, callback) = (ffi::BN_new(), ffi::BN_CTX_new(), ffi::BN_GENCB_new());
        let mut result = None;
        if !prime.is_null() && !context.is_null() && !callback.is_null() {
            ffi::BN_GENCB_set(callback, Some(go_on), enough as *const AtomicBool as *mut c_void);
            result = loop {
                if enough.load(Ordering::Relaxed) {
                    break Some(None);
                }
                if ffi::RAND_bytes(candidate.as_mut_ptr(), candidate.len()) != 1 {
                    break None;
                }
                shape(&mut candidate, bits);
                read_words(&candidate, &mut number);
                if small_primes.divide(&number) {
                    continue;
                }
                let mut is_prime = 0;
                if ffi::BN_le2bn(candidate.as_ptr(), candidate.len(), prime).is_null()
                    || ffi::BN_primality_test(
                        &mut is_prime,
                        prime,
                        ffi::BN_prime_checks_for_generation,
                        context,
                        0,
                        callback,
                    ) != 1
                {
                    // Stopped, or failed.
                    break enough.load(Ordering::Relaxed).then_some(None);
                }
                // p - 1 ≡ 0 (mod e) would leave e without an inverse: draw another, as Go does.
                if is_prime == 1 && ffi::BN_mod_word(prime, EXPONENT as ffi::BN_ULONG) != 1 {
                    break Some(Some(candidate.clone()));
                }
            };
        }
        ffi::BN_GENCB_free(callback);
        ffi::BN_CTX_free(context);
        // Wipes the prime.
        ffi::BN_clear_free(prime);
        result
    }
}

#[cfg(test)]
mod tests {
    use num_bigint_dig::BigUint;

    use super::*;

    /// Go's `rand.Prime`: the top two bits set, so that two primes make a key of the full size.
    /// One search and two at once, whichever order the tests run in (a render worker's
    /// [`one_search_at_a_time`] holds for the whole process).
    #[test]
    fn the_two_primes_are_distinct_of_half_the_size_and_suit_the_exponent() {
        for searches in [1, 2] {
            let [p, q] = two_primes_in(1024, searches).expect("two primes");
            assert_ne!(p, q);
            for prime in [p, q] {
                let prime = BigUint::from_bytes_le(&prime);
                assert_eq!(prime.bits(), 1024);
                assert_eq!(&prime >> 1022usize, BigUint::from(3u8));
                assert_ne!(&prime % EXPONENT, BigUint::from(1u8), "p - 1 a multiple of e");
                // Another implementation's test: the rsa crate's (Miller-Rabin and Lucas, as Go's).
                assert!(num_bigint_dig::prime::probably_prime(&prime, 20), "{prime:x} is prime");
            }
        }
    }

    #[test]
    fn a_render_worker_searches_on_one_core() {
        one_search_at_a_time();
        assert_eq!(searches(), 1);
        assert!(two_primes(1024).is_some());
    }

    /// The words of a number, least significant first, as `prime` makes them.
    fn words_of(number: &BigUint) -> Vec<u32> {
        let bytes = number.to_bytes_le();
        let mut words = vec![0; bytes.len().div_ceil(4)];
        read_words(&bytes, &mut words);
        words
    }

    #[test]
    fn a_candidates_words_are_its_bytes_least_significant_first() {
        let mut words = [0; 2];
        read_words(&[0x01, 0x02, 0x03, 0x04, 0x05], &mut words);
        assert_eq!(words, [0x0403_0201, 0x05], "a last word of fewer bytes too");
    }

    /// Every odd prime below 2^16 has its row, and each residue is 2^(32 i) mod p.
    #[test]
    fn the_table_holds_every_small_prime_and_its_powers() {
        let table = SmallPrimes::new(SHARED_WORDS);
        assert_eq!(table.inverses.len(), 6541);
        let mut rows = table.residues.chunks_exact(SHARED_WORDS).zip(&table.inverses);
        for p in (3..1u64 << 16).step_by(2) {
            if !(3..p).step_by(2).take_while(|d| d * d <= p).all(|d| !p.is_multiple_of(d)) {
                continue;
            }
            let (row, &inverse) = rows.next().expect("a row for each prime");
            assert_eq!(inverse.wrapping_mul(p), 1, "the inverse of {p}");
            let mut power = 1u64;
            for &residue in row {
                assert_eq!(u64::from(residue), power, "2^(32 i) mod {p}");
                power = (power << 32) % p;
            }
        }
        assert!(rows.next().is_none());
    }

    #[test]
    fn no_prime_is_searched_for_below_the_fewest_bits() {
        assert!(two_primes(1).is_none());
        assert!(two_primes(MIN_BITS - 1).is_none());
        let [p, _] = two_primes(MIN_BITS).expect("two primes");
        assert_eq!(BigUint::from_bytes_le(&p).bits(), MIN_BITS as usize);
    }

    /// Numbers of every width up to the table's, and wider with a table of their own: the
    /// table says a small prime divides exactly when one does.
    #[test]
    fn the_small_primes_divide_exactly_the_numbers_they_divide() {
        let odd_primes: Vec<u32> = (3..1u32 << 16)
            .step_by(2)
            .filter(|n| (3..*n).step_by(2).take_while(|d| d * d <= *n).all(|d| !n.is_multiple_of(d)))
            .collect();
        assert_eq!(odd_primes.len(), 6541);
        let shared = SmallPrimes::shared(SHARED_WORDS).expect("the shared table");
        let wider = SmallPrimes::new(70);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut divided, mut not) = (0, 0);
        for round in 0..400u32 {
            let width = 1 + (random() % 70) as usize;
            let mut number = BigUint::from_bytes_le(&(0..width * 4).map(|_| random() as u8).collect::<Vec<_>>())
                | BigUint::from(1u8);
            // Every other number a multiple of a small prime, from the smallest to the largest.
            if round.is_multiple_of(2) {
                let p = odd_primes[(random() % odd_primes.len() as u64) as usize];
                number = (number >> 16usize) * p;
            }
            let expected = odd_primes.iter().any(|&p| (&number % p) == BigUint::from(0u8));
            let table = if width <= SHARED_WORDS { shared } else { &wider };
            assert_eq!(table.divide(&words_of(&number)), expected, "{number:x}");
            assert_eq!(wider.divide(&words_of(&number)), expected, "{number:x}");
            if expected { divided += 1 } else { not += 1 }
        }
        assert!(divided > 200 && not > 20, "both kinds tried: {divided} and {not}");
        // 2^521 - 1 and 2^1279 - 1 are prime.
        for exponent in [521usize, 1279] {
            let mersenne = (BigUint::from(1u8) << exponent) - 1u8;
            assert!(!shared.divide(&words_of(&mersenne)));
            assert!(shared.divide(&words_of(&(mersenne * 65521u32))), "65521, the largest prime below 2^16");
        }
    }

    #[test]
    fn a_candidate_has_its_size_its_top_two_bits_and_is_odd() {
        for bits in [1021u32, 1024, 2047, 2048] {
            let mut candidate = vec![0xffu8; bits.div_ceil(8) as usize];
            shape(&mut candidate, bits);
            let ones = BigUint::from_bytes_le(&candidate);
            assert_eq!(ones.bits(), bits as usize, "the unused top bits are cleared");
            let mut candidate = vec![0u8; bits.div_ceil(8) as usize];
            shape(&mut candidate, bits);
            let zeros = BigUint::from_bytes_le(&candidate);
            let expected = (BigUint::from(3u8) << (bits as usize - 2)) + 1u8;
            assert_eq!(zeros, expected);
        }
    }

    /// A search stops before its next candidate once two primes are found, and aws-lc stops a
    /// prime's rounds when the callback answers 0.
    #[test]
    fn the_callback_stops_a_search_once_two_primes_are_found() {
        let enough = AtomicBool::new(false);
        // SAFETY: as in `prime`.
        unsafe {
            let callback = ffi::BN_GENCB_new();
            ffi::BN_GENCB_set(callback, Some(go_on), &enough as *const AtomicBool as *mut c_void);
            assert_eq!(ffi::BN_GENCB_call(callback, 0, 1), 1, "not yet two primes: go on");
            enough.store(true, Ordering::Relaxed);
            assert_eq!(ffi::BN_GENCB_call(callback, 0, 2), 0, "two primes: stop");
            ffi::BN_GENCB_free(callback);
        }
        let small_primes = SmallPrimes::shared(words(1024)).expect("the shared table");
        assert_eq!(prime(1024, small_primes, &enough), Some(None), "stopped, not failed");
    }
}
