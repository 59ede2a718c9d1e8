#!/usr/bin/env python3
"""Sums folded stacks (inferno-collapse-perf output) into coarse categories per thread.

    bench/perf-categories.py folded.txt

The first rule (in order) whose pattern occurs anywhere in a stack takes the sample,
so specific work (signing, SQLite, JSON) is claimed before the layers around it
(hyper, tokio). Samples are also split by the kind of thread they ran on.
"""
import collections
import re
import sys

RULES = [
    # writer thread: durability and the engine
    ("SQLite fsync", r"unixSync|fdatasync|__x64_sys_fsync|do_fsync"),
    ("SQLite WAL checkpoint", r"sqlite3WalCheckpoint|walCheckpoint"),
    ("SQLite file writes (pwrite)", r"unixWrite|__x64_sys_pwrite64"),
    ("SQLite file reads (pread)", r"unixRead|__x64_sys_pread64"),
    ("audit chain hashing", r"latchkey_domain::audit"),
    ("SQLite open/close connection", r"openDatabase|sqlite3Close|connectionClose|sqlite3_open_v2|open_reader"),
    ("SQLite prepare (SQL parse)", r"sqlite3Prepare|sqlite3RunParser|sqlite3LockAndPrepare"),
    ("SQLite engine", r"sqlite3|rusqlite|pcache1|walIndex|btree"),
    # request work
    ("JWT signing (Ed25519 via jsonwebtoken/ring)", r"jsonwebtoken|ring_core|Ed25519|x25519|curve25519"),
    ("random secrets (getrandom)", r"getrandom|OsRng|crng_make_state|get_random_bytes"),
    ("SHA-256 of codes/tokens", r"SecretHash|sha2::"),
    ("JSON / form (serde)", r"serde_json|serde_urlencoded|serde::"),
    ("tracing", r"tracing::|tracing_core"),
    # hand-offs between threads
    ("hand-off to the blocking pool (spawn_blocking)", r"spawn_blocking|blocking::pool::Spawner"),
    ("hand-off to/from the SQLite writer", r"std::sync::mpmc|std::sync::mpsc|writer_loop|tokio::sync::oneshot"),
    # kernel network
    ("kernel TCP send", r"tcp_sendmsg|__x64_sys_sendto|__x64_sys_write[^v]|sock_write_iter|__x64_sys_writev"),
    ("kernel TCP receive", r"tcp_recvmsg|__x64_sys_recvfrom|sock_read_iter|__x64_sys_read"),
    ("kernel accept/close sockets", r"__x64_sys_accept|__x64_sys_close|tcp_close"),
    # idle / waiting (the CPU cost of going to sleep and waking up)
    ("thread park/wake (condvar, futex)", r"futex|Condvar|condvar"),
    ("epoll (tokio I/O driver)", r"epoll_wait|ep_poll|__x64_sys_epoll"),
    ("HTTP (hyper/axum/tower)", r"hyper::|axum::|tower::|http::|httparse"),
    ("memory allocator", r"malloc|_int_free|cfree|realloc|mmap|munmap"),
    ("tokio scheduler/timers", r"tokio::"),
    ("kernel scheduler/other", r"schedule|finish_task_switch|irq|softirq"),
]


def role(stack):
    """Which kind of thread a stack ran on."""
    if stack.startswith("latchkey-sqlite"):
        return "SQLite writer thread"
    if "multi_thread::worker" in stack or "Spawner::spawn_task" in stack:
        return "tokio worker threads"
    if "blocking::pool::Inner::run" in stack:
        return "tokio blocking-pool threads (SQLite readers)"
    if stack.startswith("tokio-rt"):
        # Deep async stacks are cut off by perf's dwarf stack copy before the root frames;
        # the blocking-pool stacks are shallow and complete, so these are workers.
        return "tokio worker threads"
    return "other threads"


compiled = [(name, re.compile(p)) for name, p in RULES]
by_cat = collections.Counter()
by_thread = collections.Counter()
by_thread_cat = collections.Counter()
total = 0
for line in open(sys.argv[1]):
    stack, _, count = line.rstrip("\n").rpartition(" ")
    n = int(count)
    thread = role(stack)
    cat = "other"
    for name, rx in compiled:
        if rx.search(stack):
            cat = name
            break
    by_cat[cat] += n
    by_thread[thread] += n
    by_thread_cat[(thread, cat)] += n
    total += n

print(f"{'category':46} {'share':>7}")
for cat, n in by_cat.most_common():
    print(f"{cat:46} {100 * n / total:6.1f}%")
print()
for thread, tn in by_thread.most_common():
    print(f"{thread}: {100 * tn / total:.1f}% of server CPU")
    for (t, cat), n in sorted(by_thread_cat.items(), key=lambda kv: -kv[1]):
        if t == thread and 100 * n / total >= 0.5:
            print(f"    {cat:44} {100 * n / total:6.1f}%")
