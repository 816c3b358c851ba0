"""Run a throwaway one-device, one-replica Swift cluster for tests.

Usage: cluster.py <dir> <account_port> <container_port> <object_port> <proxy_port> <memcached_port>

<dir>/etc must hold swift.conf and the four *-server.conf files. This process
builds the rings into <dir>/etc, starts memcached, imports Swift once and forks
the account, container, object and proxy servers from it (four separate
interpreters would each spend a second or more importing the same modules),
then supervises them: when it gets SIGTERM or SIGINT, when any server dies, or
when the process that started it goes away, it stops them all; in the last case
it also removes <dir>. Server output goes to <dir>/<name>.log.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

from swift.common.ring import RingBuilder
from swift.common.wsgi import run_wsgi
from swift.obj import server as object_server
# Imported once here, before forking, so that each server starts without importing them again.
import swift.account.server  # noqa: F401
import swift.container.server  # noqa: F401
import swift.proxy.server  # noqa: F401
import swift.common.middleware.s3api.s3api  # noqa: F401

base = sys.argv[1]
ports = dict(zip(('account', 'container', 'object', 'proxy', 'memcached'), map(int, sys.argv[2:7])))
etc = os.path.join(base, 'etc')
parent = os.getppid()


def build_rings():
    for name in ('account', 'container', 'object'):
        # 2^6 partitions, 1 replica, no min_part_hours: plenty for one device.
        builder = RingBuilder(6, 1, 0)
        builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': ports[name],
                         'device': 'd1', 'weight': 100, 'meta': ''})
        builder.rebalance()
        builder.get_ring().save(os.path.join(etc, '%s.ring.gz' % name))


def log_file(name):
    return open(os.path.join(base, '%s.log' % name), 'ab', buffering=0)


def fork_server(name):
    pid = os.fork()
    if pid:
        return pid
    try:
        out = log_file(name)
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        extra = {'global_conf_callback': object_server.global_conf_callback} if name == 'object' else {}
        # verbose: log to the console (our log file) instead of syslog.
        code = run_wsgi(os.path.join(etc, '%s-server.conf' % name), '%s-server' % name, verbose=True, **extra)
        os._exit(code or 0)
    except BaseException as err:  # never return into the supervisor's code
        print('%s-server failed: %r' % (name, err), file=sys.stderr)
        os._exit(1)


build_rings()
memcached_args = ['/usr/bin/memcached', '-l', '127.0.0.1', '-p', str(ports['memcached']), '-U', '0', '-m', '16']
if os.getuid() == 0:
    memcached_args += ['-u', 'root']
memcached = subprocess.Popen(memcached_args, stdout=log_file('memcached'), stderr=subprocess.STDOUT)
children = {fork_server(name): name for name in ('account', 'container', 'object', 'proxy')}
children[memcached.pid] = 'memcached'

stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append('signal'))
signal.signal(signal.SIGINT, lambda *_: stopping.append('signal'))
print('cluster: started %s' % ', '.join('%s=%d' % (n, p) for p, n in children.items()), flush=True)

reason = None
while reason is None:
    if stopping:
        reason = 'stop requested'
    elif os.getppid() != parent:
        reason = 'parent process went away'
    else:
        pid, status = os.waitpid(-1, os.WNOHANG) if children else (0, 0)
        if pid:
            reason = '%s exited with status %d' % (children.pop(pid), status)
        else:
            time.sleep(0.2)

print('cluster: stopping (%s)' % reason, file=sys.stderr, flush=True)
for pid in children:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
deadline = time.monotonic() + 5
while children and time.monotonic() < deadline:
    pid, _ = os.waitpid(-1, os.WNOHANG)
    if pid:
        children.pop(pid, None)
    else:
        time.sleep(0.05)
for pid in children:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
if reason == 'parent process went away':
    shutil.rmtree(base, ignore_errors=True)
sys.exit(0 if reason == 'stop requested' else 1)
