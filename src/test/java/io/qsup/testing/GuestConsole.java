package io.qsup.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * The test guest's serial console, reached through a QEMU unix-socket chardev
 * ({@code -chardev socket,id=serial0,path=P,server=on,wait=off -serial chardev:serial0}).
 *
 * <p>Locking: one reader thread ("guest-console &lt;socket&gt;") appends complete lines to {@code lines} under the
 * instance monitor and notifies; test threads wait on the monitor. {@link #send} writes outside the monitor and may be
 * called from any thread.
 *
 * <p>QEMU drops console output while no client is connected, and the guest drops input before its init reads the
 * console: connect right after starting QEMU, and send commands only after {@link #awaitReady}.
 */
public final class GuestConsole implements AutoCloseable {

    /** Prefix of every line the guest's init writes. */
    public static final String PREFIX = "QSUP-GUEST ";

    private final Path socket;
    private final SocketChannel channel;
    private final Thread reader;
    // Guarded by this.
    private final List<String> lines = new ArrayList<>();
    // Guarded by this: index of the first line not yet consumed by awaitLine.
    private int next;
    // Guarded by this.
    private boolean eof;

    private GuestConsole(Path socket, SocketChannel channel) {
        this.socket = socket;
        this.channel = channel;
        this.reader = Thread.ofPlatform().daemon().name("guest-console " + socket.getFileName()).unstarted(this::readLoop);
    }

    /** Connects to the console socket, retrying until QEMU has created it or {@code timeout} passes. */
    public static GuestConsole connect(Path consoleSocket, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        IOException last = null;
        while (System.nanoTime() < deadline) {
            SocketChannel ch = null;
            try {
                ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                ch.connect(UnixDomainSocketAddress.of(consoleSocket));
                GuestConsole console = new GuestConsole(consoleSocket, ch);
                console.reader.start();
                return console;
            } catch (IOException e) {
                last = e;
                closeQuietly(ch);
            }
            sleep(20);
        }
        throw new IllegalStateException("cannot connect to the guest console " + consoleSocket + " within " + timeout
                + ": " + (last == null ? "timed out" : last.getMessage()) + "; did QEMU start? (see its log)");
    }

    /** Waits for the ready line {@value TestGuest#READY_LINE}; lines before it are consumed. */
    public void awaitReady(Duration timeout) {
        awaitLine(l -> l.contains(TestGuest.READY_LINE), timeout);
    }

    /** Sends one command line: {@code poweroff | reboot | panic | ignore-acpi | hang}. */
    public void send(String command) {
        if (command.contains("\n") || command.contains("\r")) {
            throw new IllegalArgumentException("a guest command is one line, got " + command.replace("\n", "\\n"));
        }
        ByteBuffer buf = ByteBuffer.wrap((command + "\n").getBytes(StandardCharsets.UTF_8));
        try {
            while (buf.hasRemaining()) {
                channel.write(buf);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot send '" + command + "' to the guest console " + socket, e);
        }
    }

    /** Sends {@code command} and waits for the guest's {@code QSUP-GUEST OK <command>}. */
    public void command(String command, Duration timeout) {
        send(command);
        String expected = PREFIX + "OK " + command;
        awaitLine(l -> l.contains(expected), timeout);
    }

    /**
     * Waits for the next line matching {@code p}, consuming it and every line before it.
     *
     * @throws IllegalStateException on timeout or when the console closes first; the message shows the last lines seen
     */
    public String awaitLine(Predicate<String> p, Duration timeout) {
        return pollLine(p, timeout).orElseThrow(() -> new IllegalStateException(
                "no matching line from the guest console " + socket + " within " + timeout
                        + (isClosedByQemu() ? " (console closed)" : "") + "; last lines:\n" + tail(20)));
    }

    /** Like {@link #awaitLine} but returns empty on timeout or end of console, for asserting that nothing came. */
    public synchronized Optional<String> pollLine(Predicate<String> p, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            while (next < lines.size()) {
                String line = lines.get(next++);
                if (p.test(line)) {
                    return Optional.of(line);
                }
            }
            long left = deadline - System.nanoTime();
            if (eof || left <= 0) {
                return Optional.empty();
            }
            try {
                TimeUnit.NANOSECONDS.timedWait(this, left);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for the guest console " + socket, e);
            }
        }
    }

    /** Every complete line received so far ({@code \r} removed), for diagnostics. */
    public synchronized List<String> transcript() {
        return List.copyOf(lines);
    }

    /** True once QEMU closed the console (it exited). */
    public synchronized boolean isClosedByQemu() {
        return eof;
    }

    @Override
    public void close() {
        closeQuietly(channel);
        try {
            reader.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void readLoop() {
        ByteArrayOutputStream current = new ByteArrayOutputStream();
        ByteBuffer buf = ByteBuffer.allocate(4096);
        try {
            // Plain channel reads: a stream from Channels.newInputStream could hold a lock that blocks send().
            while (channel.read(buf.clear()) > 0) {
                buf.flip();
                while (buf.hasRemaining()) {
                    byte b = buf.get();
                    if (b == '\n') {
                        addLine(current.toString(StandardCharsets.UTF_8).replace("\r", ""));
                        current.reset();
                    } else {
                        current.write(b);
                    }
                }
            }
        } catch (IOException e) {
            // Closed by close() or by QEMU exiting: both end the console.
        } finally {
            synchronized (this) {
                if (current.size() > 0) {
                    lines.add(current.toString(StandardCharsets.UTF_8).replace("\r", ""));
                }
                eof = true;
                notifyAll();
            }
        }
    }

    private synchronized void addLine(String line) {
        lines.add(line);
        notifyAll();
    }

    private synchronized String tail(int count) {
        List<String> last = lines.subList(Math.max(0, lines.size() - count), lines.size());
        return last.isEmpty() ? "  (nothing)" : "  " + String.join("\n  ", last);
    }

    private static void closeQuietly(SocketChannel ch) {
        if (ch != null) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // Nothing left to release.
            }
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while connecting to the guest console", e);
        }
    }
}
