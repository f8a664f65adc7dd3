package io.qsup.daemon;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * One qsupd per run-dir: an exclusive lock on {@code run-dir/qsupd.lock}, which holds the owner's pid. The kernel drops
 * the lock when the process dies, even by {@code kill -9}, so a new qsupd can take over at once. Not thread-safe; one
 * owner.
 */
public final class DaemonLock implements AutoCloseable {
    private final Path file;
    private final FileChannel channel;
    private final FileLock lock;

    private DaemonLock(Path file, FileChannel channel, FileLock lock) {
        this.file = file;
        this.channel = channel;
        this.lock = lock;
    }

    /**
     * Takes the lock, waiting up to {@code waitMillis} for another holder to go away.
     *
     * @throws DaemonException naming the pid that holds it
     */
    public static DaemonLock acquire(Path runDir, long waitMillis) throws DaemonException {
        Path file = runDir.resolve("qsupd.lock");
        try {
            Files.createDirectories(runDir);
            FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
            long deadline = System.nanoTime() + waitMillis * 1_000_000;
            while (true) {
                FileLock l = ch.tryLock();
                if (l != null) {
                    ch.truncate(0);
                    ch.write(ByteBuffer.wrap((ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.US_ASCII)),
                            0);
                    ch.force(true);
                    return new DaemonLock(file, ch, l);
                }
                if (System.nanoTime() > deadline) {
                    String holder = Files.readString(file).trim();
                    ch.close();
                    throw new DaemonException("another qsupd (pid " + (holder.isEmpty() ? "unknown" : holder)
                            + ") holds " + file + "; stop it first, or give this one another run-dir");
                }
                Thread.sleep(100);
            }
        } catch (IOException e) {
            throw new DaemonException("cannot lock " + file + ": " + e.getMessage() + "; check that run-dir is writable",
                    e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new DaemonException("interrupted while waiting for " + file, e);
        }
    }

    public Path file() {
        return file;
    }

    @Override
    public void close() {
        try {
            lock.release();
            channel.close();
        } catch (IOException ignored) {
            // the process is exiting; the kernel drops the lock anyway
        }
    }
}
