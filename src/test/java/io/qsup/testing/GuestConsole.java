package io.qsup.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * The test guest's serial console: either a QEMU unix-socket chardev
 * ({@code -chardev socket,id=serial0,path=P,server=on,wait=off -serial chardev:serial0}), read and written, or a serial
 * log file ({@code logfile=...}) followed read-only.
 *
 * <p>Locking: one reader thread ("guest-console &lt;file&gt;") appends complete lines to {@code lines} under the
 * instance monitor and notifies; test threads wait on the monitor. {@link #send} writes outside the monitor and may be
 * called from any thread.
 *
 * <p>QEMU drops console output while no client is connected to the socket, and the guest drops input before its init
 * reads the console: connect right after starting QEMU, and send commands only after {@link #awaitReady}.
 */
public final class GuestConsole implements AutoCloseable {

    /** Prefix of every line the guest's init writes. */
    public static final String PREFIX = "QSUP-GUEST ";

    private static final long LOG_POLL_MILLIS = 50;

    private final Path source;
    private final SocketChannel channel; // null when following a log file
    private final Thread reader;
    private volatile boolean closing;
    // Guarded by this.
    private final List<String> lines = new ArrayList<>();
    // Guarded by this: index of the first line not yet consumed by awaitLine.
    private int next;
    // Guarded by this.
    private boolean eof;

    private GuestConsole(Path source, SocketChannel channel) {
        this.source = source;
        this.channel = channel;
        Runnable loop = channel != null ? this::readSocket : this::followLog;
        this.reader = Thread.ofPlatform().daemon().name("guest-console " + source.getFileName()).unstarted(loop);
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

    /**
     * Follows a serial log file from its start (it may not exist yet), read-only: {@link #send} is refused. Use it when
     * another client (the daemon) holds the console socket.
     */
    public static GuestConsole followLog(Path serialLog) {
        GuestConsole console = new GuestConsole(serialLog, null);
        console.reader.start();
        return console;
    }

    /** Waits for the ready line {@value TestGuest#READY_LINE}; lines before it are consumed. */
    public void awaitReady(Duration timeout) {
        awaitLine(l -> l.contains(TestGuest.READY_LINE), timeout);
    }

    /** Sends one command line, one of those guest/README.md lists ({@code poweroff}, {@code uptime}, ...). */
    public void send(String command) {
        if (channel == null) {
            throw new UnsupportedOperationException("cannot send '" + command + "': " + source
                    + " is a serial log, followed read-only; connect to the console socket to send commands");
        }
        if (command.contains("\n") || command.contains("\r")) {
            throw new IllegalArgumentException("a guest command is one line, got " + command.replace("\n", "\\n"));
        }
        ByteBuffer buf = ByteBuffer.wrap((command + "\n").getBytes(StandardCharsets.UTF_8));
        try {
            while (buf.hasRemaining()) {
                channel.write(buf);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot send '" + command + "' to the guest console " + source, e);
        }
    }

    /**
     * Sends {@code command} and waits for the guest's {@code QSUP-GUEST OK <command>}. The guest answers before acting,
     * except for {@code ignore-acpi}: when that returns, power-button presses are already ignored.
     */
    public void command(String command, Duration timeout) {
        send(command);
        String expected = PREFIX + "OK " + command;
        awaitLine(l -> l.contains(expected), timeout);
    }

    /**
     * Asks the guest for its kernel's uptime ({@code uptime}, answered {@code QSUP-GUEST OK uptime SECONDS}), in
     * seconds. It goes on across a live migration and starts again near 0 after a new boot.
     */
    public double uptime(Duration timeout) {
        send("uptime");
        String line = awaitLine(l -> l.contains(PREFIX + "OK uptime "), timeout);
        String value = line.substring(line.indexOf(PREFIX + "OK uptime ") + (PREFIX + "OK uptime ").length()).trim();
        return Double.parseDouble(value);
    }

    /**
     * Asks {@code uptime} once a second until the guest's init answers, then drains the answers to the asks still in
     * flight, so that the next {@link #uptime} is a fresh one. False if no answer came within {@code timeout}.
     */
    public boolean awaitAnswering(Duration timeout) {
        String answer = PREFIX + "OK uptime ";
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            send("uptime");
            if (pollLine(l -> l.contains(answer), Duration.ofSeconds(1)).isPresent()) {
                while (pollLine(l -> l.contains(answer), Duration.ofMillis(500)).isPresent()) {
                    // keep draining
                }
                return true;
            }
        }
        return false;
    }

    /** Waits until the guest has been up {@code min} seconds (so a fresh boot would show a smaller uptime). */
    public double uptimeAtLeast(double min) throws InterruptedException {
        while (true) {
            double up = uptime(Duration.ofSeconds(30));
            if (up >= min) {
                return up;
            }
            Thread.sleep(500);
        }
    }

    /**
     * Waits for the next line matching {@code p}, consuming it and every line before it.
     *
     * @throws IllegalStateException on timeout or when the console closes first; the message shows the last lines seen
     */
    public String awaitLine(Predicate<String> p, Duration timeout) {
        return pollLine(p, timeout).orElseThrow(() -> new IllegalStateException(
                "no matching line from the guest console " + source + " within " + timeout
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
                throw new IllegalStateException("interrupted while waiting for the guest console " + source, e);
            }
        }
    }

    /** Every complete line received so far ({@code \r} removed), for diagnostics. */
    public synchronized List<String> transcript() {
        return List.copyOf(lines);
    }

    /** True once QEMU closed the console socket (it exited). A followed log never ends. */
    public synchronized boolean isClosedByQemu() {
        return eof && !closing;
    }

    @Override
    public void close() {
        closing = true;
        closeQuietly(channel);
        reader.interrupt(); // wakes a log follower from its poll sleep; a socket read ends with the close above
        try {
            reader.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void readSocket() {
        LineSplitter splitter = new LineSplitter();
        ByteBuffer buf = ByteBuffer.allocate(4096);
        try {
            // Plain channel reads: a stream from Channels.newInputStream could hold a lock that blocks send().
            while (channel.read(buf.clear()) > 0) {
                splitter.feed(buf.flip());
            }
        } catch (IOException e) {
            // Closed by close() or by QEMU exiting: both end the console.
        } finally {
            splitter.finish();
        }
    }

    private void followLog() {
        LineSplitter splitter = new LineSplitter();
        ByteBuffer buf = ByteBuffer.allocate(4096);
        FileChannel file = null;
        try {
            while (!closing) {
                if (file == null) {
                    try {
                        file = FileChannel.open(source, StandardOpenOption.READ);
                    } catch (NoSuchFileException e) {
                        Thread.sleep(LOG_POLL_MILLIS); // QEMU creates it when it starts
                        continue;
                    }
                }
                if (file.read(buf.clear()) > 0) {
                    splitter.feed(buf.flip());
                } else {
                    Thread.sleep(LOG_POLL_MILLIS);
                }
            }
        } catch (IOException | InterruptedException e) {
            // close() interrupted the poll, or the log became unreadable: either way the follow ends.
        } finally {
            if (file != null) {
                try {
                    file.close();
                } catch (IOException ignored) {
                    // Read-only handle, nothing to flush.
                }
            }
            splitter.finish();
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

    /** Splits the byte stream into lines; a partial last line is kept until the end. Used by the reader thread only. */
    private final class LineSplitter {
        private final ByteArrayOutputStream current = new ByteArrayOutputStream();

        void feed(ByteBuffer buf) {
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

        void finish() {
            synchronized (GuestConsole.this) {
                if (current.size() > 0) {
                    lines.add(current.toString(StandardCharsets.UTF_8).replace("\r", ""));
                }
                eof = true;
                GuestConsole.this.notifyAll();
            }
        }
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
