;; Row hashing for content checksums (rowHash.ts), in WebAssembly: the hash
;; of rowHash.ts (two 32-bit lanes over little-endian words, summed per
;; table), plus the scans that find the rows in a dump's bytes, so that a
;; run of rows costs one call instead of several JavaScript calls per row.
;;
;; Compiled to rowScanWasm.ts by `npm run build:wasm` (wabt); a unit test
;; checks that the committed bytes are this file's.
;;
;; The caller puts the bytes into the memory (or finds them there), sets the table's sums in $s1
;; and $s2, zeroes $rows, calls a scan, and reads the sums and the count of
;; rows added back. Every scan returns the address where it stopped: the
;; caller's own (JavaScript) parser goes on from there.
(module
  ;; Shared, so that a row reader's worker hashes the slots its main thread fills in place (rowReaderWorker.ts).
  (import "env" "memory" (memory 1 65536 shared))
  (global $s1 (export "s1") (mut i32) (i32.const 0))
  (global $s2 (export "s2") (mut i32) (i32.const 0))
  (global $rows (export "rows") (mut i32) (i32.const 0))
  ;; Set to 1 by $lines when it meets the stop line.
  (global $stopped (export "stopped") (mut i32) (i32.const 0))
  ;; Set by $tuples: 1 when it stopped just after a tuple's `)`, 0 at the start of an unfinished tuple.
  (global $afterTuple (export "afterTuple") (mut i32) (i32.const 0))

  ;; Add the hash of the row [p, end) to the sums (rowHash.ts, RowHashSum.add).
  (func $row (export "row") (param $p i32) (param $end i32)
    (local $len i32) (local $h1 i32) (local $h2 i32) (local $k i32) (local $shift i32)
    (local.set $len (i32.sub (local.get $end) (local.get $p)))
    (local.set $h1 (i32.xor (i32.const 0x9747b28c) (local.get $len)))
    (local.set $h2 (i32.const 0x1b873593))
    (block $wordsDone
      (loop $words
        (br_if $wordsDone (i32.gt_u (i32.add (local.get $p) (i32.const 4)) (local.get $end)))
        (local.set $k (i32.load align=1 (local.get $p)))
        (local.set $h2
          (i32.add
            (i32.mul (i32.xor (local.get $h2) (local.get $k)) (i32.const 0x01000193))
            (i32.shr_u (local.get $h2) (i32.const 17))))
        (local.set $k
          (i32.mul (i32.rotl (i32.mul (local.get $k) (i32.const 0xcc9e2d51)) (i32.const 15))
                   (i32.const 0x1b873593)))
        (local.set $h1
          (i32.add
            (i32.mul (i32.rotl (i32.xor (local.get $h1) (local.get $k)) (i32.const 13)) (i32.const 5))
            (i32.const 0xe6546b64)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $words)))
    ;; The last 0-3 bytes, little-endian.
    (local.set $k (i32.const 0))
    (block $tailDone
      (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $k (i32.or (local.get $k) (i32.shl (i32.load8_u (local.get $p)) (local.get $shift))))
        (local.set $shift (i32.add (local.get $shift) (i32.const 8)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $tail)))
    (local.set $h2
      (i32.mul (i32.xor (i32.xor (local.get $h2) (local.get $k)) (local.get $len)) (i32.const 0x01000193)))
    (local.set $h1
      (i32.xor (local.get $h1)
        (i32.mul (i32.rotl (i32.mul (local.get $k) (i32.const 0xcc9e2d51)) (i32.const 15))
                 (i32.const 0x1b873593))))
    (local.set $h1 (i32.xor (local.get $h1) (i32.shr_u (local.get $h1) (i32.const 16))))
    (local.set $h1 (i32.mul (local.get $h1) (i32.const 0x85ebca6b)))
    (local.set $h1 (i32.xor (local.get $h1) (i32.shr_u (local.get $h1) (i32.const 13))))
    (local.set $h1 (i32.mul (local.get $h1) (i32.const 0xc2b2ae35)))
    (local.set $h1 (i32.xor (local.get $h1) (i32.shr_u (local.get $h1) (i32.const 16))))
    (local.set $h2 (i32.xor (local.get $h2) (local.get $h1)))
    (local.set $h2 (i32.xor (local.get $h2) (i32.shr_u (local.get $h2) (i32.const 15))))
    (local.set $h2 (i32.mul (local.get $h2) (i32.const 0x2c1b3c6d)))
    (local.set $h2 (i32.xor (local.get $h2) (i32.shr_u (local.get $h2) (i32.const 12))))
    (local.set $h2 (i32.mul (local.get $h2) (i32.const 0x297a2d39)))
    (local.set $h2 (i32.xor (local.get $h2) (i32.shr_u (local.get $h2) (i32.const 15))))
    (global.set $s1 (i32.add (global.get $s1) (local.get $h1)))
    (global.set $s2 (i32.add (global.get $s2) (local.get $h2)))
    (global.set $rows (i32.add (global.get $rows) (i32.const 1))))

  ;; Address of the first `\n` in [p, end), or -1; eight bytes per step.
  (func $newline (param $p i32) (param $end i32) (result i32)
    (local $w i64) (local $t i64)
    (block $bytes
      (loop $words
        (br_if $bytes (i32.gt_u (i32.add (local.get $p) (i32.const 8)) (local.get $end)))
        ;; The zero-byte test on w^0x0a…: the high bit of the first `\n` byte is set, and nothing below it
        ;; (bits above may be wrong). Written out here and below: V8 does not inline calls.
        (local.set $w (i64.xor (i64.load align=1 (local.get $p)) (i64.const 0x0a0a0a0a0a0a0a0a)))
        (local.set $t
          (i64.and
            (i64.and (i64.sub (local.get $w) (i64.const 0x0101010101010101)) (i64.xor (local.get $w) (i64.const -1)))
            (i64.const 0x8080808080808080)))
        (if (i64.ne (local.get $t) (i64.const 0))
          (then (return (i32.add (local.get $p) (i32.wrap_i64 (i64.shr_u (i64.ctz (local.get $t)) (i64.const 3)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br $words)))
    (block $none
      (loop $each
        (br_if $none (i32.ge_u (local.get $p) (local.get $end)))
        (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 10)) (then (return (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $each)))
    (i32.const -1))

  ;; Hash every `\n`-terminated line of [p, end) (without its `\n`) as a row; returns the address after the
  ;; last line end. When $stop is not 0 a two-byte line equal to it (as a little-endian u16) is not a row:
  ;; $stopped is set and the address after it returned.
  (func $lines (export "lines") (param $p i32) (param $end i32) (param $stop i32) (result i32)
    (local $nl i32)
    (loop $next
      (local.set $nl (call $newline (local.get $p) (local.get $end)))
      (if (i32.lt_s (local.get $nl) (i32.const 0)) (then (return (local.get $p))))
      (if (i32.and
            (i32.and (i32.ne (local.get $stop) (i32.const 0))
                     (i32.eq (i32.sub (local.get $nl) (local.get $p)) (i32.const 2)))
            (i32.eq (i32.load16_u align=1 (local.get $p)) (local.get $stop)))
        (then
          (global.set $stopped (i32.const 1))
          (return (i32.add (local.get $nl) (i32.const 1)))))
      (call $row (local.get $p) (local.get $nl))
      (local.set $p (i32.add (local.get $nl) (i32.const 1)))
      (br $next))
    (unreachable))

  ;; A pg_dump custom-format data block (archiveRows.ts) from a chunk length at p: every chunk that is whole in
  ;; [p, end) and ends with `\n` has its lines hashed (COPY's `\.` line stops the table). Returns the address of
  ;; the first chunk length it leaves to the caller: a zero or negative length (the block's end), a chunk that is
  ;; not all in the bytes or does not end a line, or the one after the stop line. Lengths are 4-byte ints.
  (func $archiveChunks (export "archiveChunks") (param $p i32) (param $end i32) (result i32)
    (local $len i32) (local $data i32) (local $next i32)
    (loop $chunk
      (if (i32.gt_u (i32.add (local.get $p) (i32.const 5)) (local.get $end)) (then (return (local.get $p))))
      ;; The sign byte: not 0 means a negative length.
      (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 0)) (then (return (local.get $p))))
      (local.set $len (i32.load align=1 (i32.add (local.get $p) (i32.const 1))))
      (if (i32.le_s (local.get $len) (i32.const 0)) (then (return (local.get $p))))
      (local.set $data (i32.add (local.get $p) (i32.const 5)))
      (local.set $next (i32.add (local.get $data) (local.get $len)))
      (if (i32.or (i32.gt_u (local.get $next) (local.get $end)) (i32.lt_u (local.get $next) (local.get $data)))
        (then (return (local.get $p))))
      (if (i32.ne (i32.load8_u (i32.sub (local.get $next) (i32.const 1))) (i32.const 10))
        (then (return (local.get $p))))
      ;; `\.` as a little-endian u16.
      (drop (call $lines (local.get $data) (local.get $next) (i32.const 0x2e5c)))
      (if (global.get $stopped) (then (return (local.get $next))))
      (local.set $p (local.get $next))
      (br $chunk))
    (unreachable))

  ;; A COPY TO's protocol messages (readBack.ts) from a message's first byte at p: every CopyData message (`d`,
  ;; big-endian length including itself) that is whole in [p, end) and ends with `\n` has its line hashed.
  ;; Returns the address of the first message it leaves to the caller.
  (func $copyData (export "copyData") (param $p i32) (param $end i32) (result i32)
    (local $len i32) (local $data i32) (local $next i32)
    (loop $message
      (if (i32.gt_u (i32.add (local.get $p) (i32.const 5)) (local.get $end)) (then (return (local.get $p))))
      (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 0x64)) (then (return (local.get $p))))
      (local.set $len
        (i32.or
          (i32.or (i32.shl (i32.load8_u offset=1 (local.get $p)) (i32.const 24))
                  (i32.shl (i32.load8_u offset=2 (local.get $p)) (i32.const 16)))
          (i32.or (i32.shl (i32.load8_u offset=3 (local.get $p)) (i32.const 8))
                  (i32.load8_u offset=4 (local.get $p)))))
      ;; The body's length; the caller reports an invalid one.
      (local.set $len (i32.sub (local.get $len) (i32.const 4)))
      (if (i32.le_s (local.get $len) (i32.const 0)) (then (return (local.get $p))))
      (local.set $data (i32.add (local.get $p) (i32.const 5)))
      (local.set $next (i32.add (local.get $data) (local.get $len)))
      (if (i32.or (i32.gt_u (local.get $next) (local.get $end)) (i32.lt_u (local.get $next) (local.get $data)))
        (then (return (local.get $p))))
      (if (i32.ne (i32.load8_u (i32.sub (local.get $next) (i32.const 1))) (i32.const 10))
        (then (return (local.get $p))))
      (drop (call $lines (local.get $data) (local.get $next) (i32.const 0)))
      (local.set $p (local.get $next))
      (br $message))
    (unreachable))

  ;; The tuples of a mariadb-dump INSERT statement (dumpRows.ts) from just after a tuple's `(`: each tuple's
  ;; text up to the `)` that ends it (outside single quotes; inside them a backslash escapes the next byte) is
  ;; hashed as a row, and the scan goes on while `,(` or `,\n(` follows. Returns the address after the last
  ;; tuple's `)` with $afterTuple = 1, or, when a tuple does not end in [p, end), that tuple's start with
  ;; $afterTuple = 0.
  (func $tuples (export "tuples") (param $p i32) (param $end i32) (result i32)
    (local $q i32) (local $c i32) (local $w i64) (local $a i64) (local $b i64) (local $t i64)
    (loop $tuple
      (local.set $q (local.get $p))
      (block $closed
        (loop $scan
          (if (i32.ge_u (local.get $q) (local.get $end))
            (then (global.set $afterTuple (i32.const 0)) (return (local.get $p))))
          (local.set $c (i32.load8_u (local.get $q)))
          (br_if $closed (i32.eq (local.get $c) (i32.const 0x29)))
          (local.set $q (i32.add (local.get $q) (i32.const 1)))
          (br_if $scan (i32.ne (local.get $c) (i32.const 0x27)))
          ;; Inside a quoted value: up to its closing quote, eight bytes per step while no quote or backslash.
          (loop $quoted
            (block $byte
              (loop $words
                (br_if $byte (i32.gt_u (i32.add (local.get $q) (i32.const 8)) (local.get $end)))
                ;; Bytes equal to `'` or `\`: the zero-byte test of $newline on w^0x27… and w^0x5c….
                (local.set $w (i64.load align=1 (local.get $q)))
                (local.set $a (i64.xor (local.get $w) (i64.const 0x2727272727272727)))
                (local.set $b (i64.xor (local.get $w) (i64.const 0x5c5c5c5c5c5c5c5c)))
                (local.set $t
                  (i64.and
                    (i64.or
                      (i64.and (i64.sub (local.get $a) (i64.const 0x0101010101010101))
                               (i64.xor (local.get $a) (i64.const -1)))
                      (i64.and (i64.sub (local.get $b) (i64.const 0x0101010101010101))
                               (i64.xor (local.get $b) (i64.const -1))))
                    (i64.const 0x8080808080808080)))
                (if (i64.ne (local.get $t) (i64.const 0))
                  (then
                    (local.set $q
                      (i32.add (local.get $q) (i32.wrap_i64 (i64.shr_u (i64.ctz (local.get $t)) (i64.const 3)))))
                    (br $byte)))
                (local.set $q (i32.add (local.get $q) (i32.const 8)))
                (br $words)))
            (if (i32.ge_u (local.get $q) (local.get $end))
              (then (global.set $afterTuple (i32.const 0)) (return (local.get $p))))
            (local.set $c (i32.load8_u (local.get $q)))
            (if (i32.eq (local.get $c) (i32.const 0x5c))
              (then (local.set $q (i32.add (local.get $q) (i32.const 2))) (br $quoted)))
            (local.set $q (i32.add (local.get $q) (i32.const 1)))
            (br_if $scan (i32.eq (local.get $c) (i32.const 0x27)))
            (br $quoted))))
      (call $row (local.get $p) (local.get $q))
      (local.set $p (i32.add (local.get $q) (i32.const 1)))
      (if (i32.and (i32.lt_u (i32.add (local.get $p) (i32.const 1)) (local.get $end))
                   (i32.eq (i32.load16_u align=1 (local.get $p)) (i32.const 0x282c)))
        (then (local.set $p (i32.add (local.get $p) (i32.const 2))) (br $tuple)))
      (if (i32.lt_u (i32.add (local.get $p) (i32.const 2)) (local.get $end))
        (then
          (if (i32.and (i32.eq (i32.load16_u align=1 (local.get $p)) (i32.const 0x0a2c))
                       (i32.eq (i32.load8_u offset=2 (local.get $p)) (i32.const 0x28)))
            (then (local.set $p (i32.add (local.get $p) (i32.const 3))) (br $tuple)))))
      (global.set $afterTuple (i32.const 1))
      (return (local.get $p)))
    (unreachable))
)
