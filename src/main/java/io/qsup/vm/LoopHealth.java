package io.qsup.vm;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The health contract of qsupd's own loops, which the systemd watchdog reads (qsupd's {@code daemon.SdWatchdog}): each supervising
 * loop registers once and proves progress with one call, and only while every registered loop has proved progress
 * within the watchdog's period does qsupd send {@code WATCHDOG=1}.
 *
 * <p>How a loop proves progress:
 * <ul>
 *   <li>{@link #beating}: the loop wakes by itself (the liveness probe) and calls {@link Loop#beat()} every cycle.</li>
 *   <li>{@link #queue}: a work queue (a VM's {@code vm-ops} thread) may sit idle for hours, so the watchdog posts a
 *       no-op through it when it has been quiet for half a period; the no-op running is the proof. A long operation on
 *       that thread (a stop ladder) proves progress at its poll points with {@link #progress()}, and declares a single
 *       step that blocks longer than a period with {@link Loop#quietFor}.</li>
 *   <li>{@link #poked}: a loop blocked in {@code accept()} is woken by a real connection ({@link #connectingTo}), and
 *       beats when {@code accept()} returns.</li>
 * </ul>
 * At most one no-op is outstanding per queue, so a stuck queue does not fill with them; a poke that did not wake its
 * loop is repeated every quarter period.
 *
 * <p>Test hook: with the system property {@value #TEST_FREEZE_PROPERTY} naming a file, the watchdog's no-op blocks the
 * queue loop whose name is that file's content (for example {@code vm-ops web1}) for as long as the file says so,
 * without proving progress: the way tests freeze one VM's event thread in a real qsupd. Without the property (always,
 * outside tests) the no-op only proves progress.
 *
 * <p>Threading: the registry is a concurrent set; each {@link Loop} holds volatile fields and an atomic flag, so any
 * thread may beat, register or close, and the watchdog thread reads them without a lock; its plain
 * {@code reportedStale} flag belongs to the watchdog thread alone. Nothing here blocks, except the test hook.
 */
public final class LoopHealth {
    private static final Logger log = LoggerFactory.getLogger(LoopHealth.class);
    /** Test-only: names a file whose content freezes the queue loop of that name (see the class comment). */
    public static final String TEST_FREEZE_PROPERTY = "qsup.test-only.freeze-loop-file";
    private static final String FREEZE_FILE = System.getProperty(TEST_FREEZE_PROPERTY);

    private static final Set<Loop> loops = ConcurrentHashMap.newKeySet();
    /** The loop each thread serves, for {@link #progress()} from code that holds no handle. */
    private static final Map<Thread, Loop> byThread = new ConcurrentHashMap<>();
    /** The names of the loops the watchdog last found stale, for the status line. */
    private static volatile List<String> stuck = List.of();

    /**
     * How often a beating loop beats while it waits: a quarter of the watchdog's judging period (as the watchdog
     * itself ticks) once a watchdog is expected, never otherwise, since nobody reads the beats then and each wake-up
     * of an idle probe costs the host a context switch or two.
     */
    private static volatile long beatNanos = Long.MAX_VALUE;

    private LoopHealth() {}

    /** A watchdog judging every {@code period} will run: beating loops beat often enough for it from now on. */
    public static void expectWatchdog(Duration period) {
        beatNanos = Math.clamp(period.toNanos() / 4, 50_000_000L, 1_000_000_000L);
    }

    /** How long a beating loop may sleep between beats; {@code Long.MAX_VALUE} nanoseconds without a watchdog. */
    public static long beatNanos() {
        return beatNanos;
    }

    /** A loop that wakes by itself and calls {@link Loop#beat()} each cycle. */
    public static Loop beating(String name) {
        return add(new Loop(name, null, false));
    }

    /**
     * A work queue: {@code submit} posts a task to run on the queue's thread (dropping it once the queue is closed).
     * A first no-op is posted at once, so the queue's thread is known to {@link #progress()} from its first task on.
     */
    public static Loop queue(String name, Consumer<Runnable> submit) {
        Loop l = add(new Loop(name, null, true));
        l.kicker = () -> submit.accept(l::kickRan);
        l.kick(System.nanoTime(), 0);
        return l;
    }

    /** A loop that blocks until something arrives; {@code poke} makes something arrive (it must not block). */
    public static Loop poked(String name, Runnable poke) {
        return add(new Loop(name, poke, false));
    }

    /** A poke for a loop that accepts on a unix socket: connect and hang up at once. */
    public static Runnable connectingTo(Path socket) {
        UnixDomainSocketAddress addr = UnixDomainSocketAddress.of(socket);
        return () -> {
            try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                ch.configureBlocking(false); // a full backlog must not block the watchdog
                ch.connect(addr);
            } catch (IOException e) {
                // the loop does not beat; the poke is repeated, and the watchdog reports the loop if it stays quiet
            }
        };
    }

    /** The current thread made progress, if it is a registered loop's thread (a poll point inside a long step). */
    public static void progress() {
        Loop l = byThread.get(Thread.currentThread());
        if (l != null) {
            l.beat();
        }
    }

    static List<Loop> loops() {
        return new ArrayList<>(loops);
    }

    /** The loops the watchdog found stale at its last look; empty without a watchdog. */
    public static List<String> stuck() {
        return stuck;
    }

    /**
     * Asks quiet loops for proof (a loop in a declared quiet step too: the request runs once the step is over, and ends
     * the allowance) and returns the names of those silent longer than the period {@code p}
     * (silence before {@code since} does not count); logs changes and keeps the list for {@link #stuck()}. Called
     * by one thread, the watchdog's, which owns the loops' {@code reportedStale} flags.
     */
    public static List<String> judge(long now, long p, long since) {
        List<String> stale = new ArrayList<>();
        for (Loop l : loops()) {
            long silent = l.silentNanos(now);
            if (silent > p / 2) {
                l.kick(now, p / 4);
            }
            silent = Math.min(silent, now - since);
            if (silent > p && !l.quietAt(now)) {
                stale.add(l.name);
                if (!l.reportedStale) {
                    l.reportedStale = true;
                    log.warn("watchdog: {} made no progress for {} ms (allowed {} ms); no WATCHDOG=1 until it does, so"
                            + " systemd restarts qsupd (VMs keep running){}", l.name, silent / 1_000_000,
                            p / 1_000_000, where(l.thread()));
                }
            } else if (l.reportedStale) {
                l.reportedStale = false;
                log.info("watchdog: {} makes progress again", l.name);
            }
        }
        stuck = List.copyOf(stale);
        return stale;
    }

    /** "; thread X at a.b(c), ..." for the log, or empty. */
    private static String where(Thread t) {
        if (t == null) {
            return "";
        }
        String frames = Arrays.stream(t.getStackTrace()).limit(8).map(StackTraceElement::toString)
                .collect(Collectors.joining(" < "));
        return "; thread '" + t.getName() + "' is " + t.getState() + (frames.isEmpty() ? "" : " at " + frames);
    }


    private static Loop add(Loop l) {
        loops.add(l);
        return l;
    }

    /** One registered loop; {@link #close()} when the loop ends. */
    public static final class Loop implements AutoCloseable {
        private final String name;
        private volatile Runnable kicker;
        /** nanoTime of the last proof. */
        private volatile long lastBeat = System.nanoTime();
        /** nanoTime until which a declared quiet step may last; the next proof ends it early. */
        private volatile long quietUntil = lastBeat;
        private final AtomicBoolean kickPending = new AtomicBoolean();
        /** A queue's no-op waits its turn, so one is enough; a poke may be lost, so it is repeated. */
        private final boolean queued;
        /** Watchdog thread only: when the last poke went out, if one did. */
        private long lastPoke;
        private boolean poked;
        /** The loop's thread, as its last proof showed it. */
        private volatile Thread thread;
        private volatile boolean closed;
        /** Watchdog thread only: whether it has reported this loop stale. */
        boolean reportedStale;

        private Loop(String name, Runnable kicker, boolean queued) {
            this.name = name;
            this.kicker = kicker;
            this.queued = queued;
        }

        public String name() {
            return name;
        }

        /** The loop made progress now. */
        public void beat() {
            long now = System.nanoTime();
            lastBeat = now;
            quietUntil = now;
            kickPending.set(false);
            Thread me = Thread.currentThread();
            Thread old = thread;
            if (old != me) {
                bind(old, me); // a queue's worker may be replaced; progress() follows it
            }
        }

        private void bind(Thread old, Thread me) {
            thread = me;
            if (old != null) {
                byThread.remove(old, this);
            }
            byThread.put(me, this);
            if (closed) {
                byThread.remove(me, this); // closed meanwhile: hold no thread
            }
        }

        /**
         * The next step may block up to {@code d} without proving progress (a QEMU launch with its own timeout); the
         * next proof ends the allowance.
         */
        public void quietFor(Duration d) {
            quietUntil = System.nanoTime() + d.toNanos();
        }

        /** Nanoseconds since the last proof at {@code now}. */
        long silentNanos(long now) {
            return now - lastBeat;
        }

        /** Whether a declared quiet step may still be under way at {@code now}. */
        boolean quietAt(long now) {
            return quietUntil - now > 0;
        }

        /** The thread that last proved progress, or null. */
        Thread thread() {
            return thread;
        }

        /**
         * Asks an idle loop to prove progress: a queue unless its no-op is still outstanding, a poked loop unless it
         * was poked less than {@code retryNanos} ago.
         */
        void kick(long now, long retryNanos) {
            Runnable k = kicker;
            if (k == null) {
                return;
            }
            if (queued) {
                if (kickPending.compareAndSet(false, true)) {
                    k.run();
                }
            } else if (!poked || now - lastPoke >= retryNanos) {
                poked = true;
                lastPoke = now;
                k.run();
            }
        }

        /** On the queue's thread: the watchdog's no-op. */
        private void kickRan() {
            Thread me = Thread.currentThread();
            Thread old = thread;
            if (old != me) {
                bind(old, me);
            }
            holdWhileFrozen();
            beat();
        }

        private void holdWhileFrozen() {
            if (FREEZE_FILE == null) {
                return;
            }
            Path f = Path.of(FREEZE_FILE);
            try {
                while (Files.exists(f) && Files.readString(f, StandardCharsets.UTF_8).strip().equals(name)) {
                    Thread.sleep(100);
                }
            } catch (IOException e) {
                // the file went away between the checks: thawed
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        @Override
        public void close() {
            closed = true;
            loops.remove(this);
            Thread t = thread;
            if (t != null) {
                byThread.remove(t, this);
            }
        }

        @Override
        public String toString() {
            return name;
        }
    }
}
