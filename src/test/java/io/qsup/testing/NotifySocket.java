package io.qsup.testing;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;
import org.newsclub.net.unix.AFUNIXDatagramSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/**
 * A test-owned {@code NOTIFY_SOCKET}, received as systemd does: datagrams on a unix socket in the abstract namespace
 * ({@code @name}), each recorded with the time it arrived. A platform thread receives (junixsocket I/O).
 */
public final class NotifySocket implements AutoCloseable {
    /** One datagram and when it arrived ({@link System#nanoTime()}). */
    public record Message(String text, long nanos) {}

    private final String name = "qsup-notify-" + UUID.randomUUID();
    private final AFUNIXDatagramSocket socket;
    private final Thread receiver;
    private final List<Message> messages = new CopyOnWriteArrayList<>();

    public NotifySocket() throws IOException {
        socket = AFUNIXDatagramSocket.newInstance();
        socket.bind(AFUNIXSocketAddress.inAbstractNamespace(name));
        socket.setSoTimeout(200);
        receiver = Thread.ofPlatform().daemon().name("test-notify-receiver").start(this::receive);
    }

    /** The value for {@code NOTIFY_SOCKET}. */
    public String address() {
        return "@" + name;
    }

    private void receive() {
        DatagramPacket p = new DatagramPacket(new byte[4096], 4096);
        while (!socket.isClosed()) {
            try {
                p.setLength(4096); // receive() shrinks it to the last datagram's length
                socket.receive(p);
                messages.add(new Message(new String(p.getData(), 0, p.getLength(), StandardCharsets.UTF_8),
                        System.nanoTime()));
            } catch (SocketTimeoutException e) {
                // poll again
            } catch (IOException e) {
                return;
            }
        }
    }

    public List<Message> messages() {
        return List.copyOf(messages);
    }

    public List<String> texts() {
        return messages.stream().map(Message::text).toList();
    }

    /** The first message matching {@code p}, waiting up to {@code timeout}; fails with all messages and {@code log}. */
    public Message await(Predicate<String> p, Duration timeout, ThrowingSupplier log) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            for (Message m : messages) {
                if (p.test(m.text())) {
                    return m;
                }
            }
            Thread.sleep(50);
        }
        throw new AssertionError("no such notify message within " + timeout + "; got " + texts() + "; qsupd log:\n"
                + log.get());
    }

    /** The qsupd log, for failure messages. */
    @FunctionalInterface
    public interface ThrowingSupplier {
        String get() throws Exception;
    }

    @Override
    public void close() throws InterruptedException {
        socket.close();
        receiver.join(5_000);
    }
}
