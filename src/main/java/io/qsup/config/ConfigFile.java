package io.qsup.config;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Reads a definition or settings file without trusting what its name points at: only a regular file (or a symlink
 * to one) is read, at most {@link #MAX_BYTES} of it, and never in a way that can block the caller. A FIFO, a device,
 * a socket or a directory is refused from its {@code stat} alone and never opened.
 *
 * <p>The type check and the open are two steps, so the path could be swapped for a FIFO in between. The open is made
 * on the resolved path with {@code O_NOFOLLOW}, reads at most one byte past the limit, and runs on its own daemon
 * thread under {@link #DEADLINE}: the caller gets an error when it passes. Such a thread stays parked in
 * {@code open(2)} until something writes to the FIFO; the JDK offers no non-blocking open. A hung network file system
 * is bounded the same way.
 */
final class ConfigFile {
    /** The largest file read; a definition or the settings are a few dozen lines. */
    static final long MAX_BYTES = 1 << 20;
    /** How long one file may take to open and read. */
    static final Duration DEADLINE = Duration.ofSeconds(1);

    private static final int S_IFMT = 0170000;
    private static final int S_IFREG = 0100000;

    private ConfigFile() {}

    /** Why a file was not read; the message says what the file is and what to do, without the file name. */
    static final class Refused extends Exception {
        Refused(String message) {
            super(message);
        }
    }

    /** A step of reading that may block, run under the deadline. */
    @FunctionalInterface
    interface Step {
        byte[] run() throws Refused, IOException;
    }

    /**
     * The UTF-8 text of {@code file}. {@code what} names the file's role in messages, such as "a VM definition" or
     * "the daemon settings".
     */
    static String read(Path file, String what) throws Refused {
        byte[] bytes = within(file, () -> checkedRead(file, what));
        try {
            return StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new Refused("the file is not UTF-8 text; save it as UTF-8");
        }
    }

    /** Runs {@code step} on its own thread and gives up after {@link #DEADLINE}. */
    static byte[] within(Path file, Step step) throws Refused {
        CompletableFuture<byte[]> result = new CompletableFuture<>();
        Thread t = Thread.ofPlatform().daemon().name("config-read " + file.getFileName()).unstarted(() -> {
            try {
                result.complete(step.run());
            } catch (Throwable e) {
                result.completeExceptionally(e);
            }
        });
        t.start();
        try {
            return result.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            t.interrupt(); // closes the channel if the thread is stuck in a read; an open(2) stays stuck
            throw new Refused("could not be opened and read within " + DEADLINE.toSeconds() + " s: it was replaced by"
                    + " something that is not a regular file (such as a FIFO) while being read, or its file system does"
                    + " not answer; check it with ls -l and try again");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            t.interrupt();
            throw new Refused("reading was interrupted; try again");
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof Refused r) {
                throw r;
            }
            if (c instanceof IOException io) {
                throw new Refused("cannot read the file: " + describe(io));
            }
            throw new Refused("cannot read the file: " + c);
        }
    }

    private static byte[] checkedRead(Path file, String what) throws Refused, IOException {
        Map<String, Object> attrs;
        try {
            attrs = Files.readAttributes(file, "unix:mode,size"); // stat(2): follows links, never opens
        } catch (NoSuchFileException e) {
            if (Files.isSymbolicLink(file)) {
                throw new Refused("is a symbolic link to " + Files.readSymbolicLink(file)
                        + ", which does not exist; fix or remove the link");
            }
            throw new Refused("cannot read the file: it does not exist");
        }
        int type = (Integer) attrs.get("mode") & S_IFMT;
        if (type != S_IFREG) {
            String kind = kind(type);
            String link = Files.isSymbolicLink(file) ? "is a symbolic link to " + file.toRealPath() + ", " : "is ";
            throw new Refused(link + kind + ", not a regular file; only regular files are read"
                    + (type == 0040000 ? ": rename or move the folder" : ": remove it or put " + what + " there"));
        }
        long size = (Long) attrs.get("size");
        if (size > MAX_BYTES) {
            throw new Refused(tooLarge("is " + size + " bytes", what));
        }
        return openAndRead(file.toRealPath(), what);
    }

    /** Opens the already-resolved {@code real} without following a link swapped in, reading at most the limit + 1. */
    static byte[] openAndRead(Path real, String what) throws Refused, IOException {
        try (FileChannel ch = FileChannel.open(real, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            ByteBuffer buf = ByteBuffer.allocate((int) Math.min(MAX_BYTES + 1, Math.max(8192, ch.size() + 1)));
            while (ch.read(buf) >= 0) {
                if (!buf.hasRemaining()) {
                    if (buf.capacity() > MAX_BYTES) {
                        throw new Refused(tooLarge("is more than " + MAX_BYTES + " bytes", what));
                    }
                    ByteBuffer bigger = ByteBuffer.allocate((int) Math.min(MAX_BYTES + 1, 2L * buf.capacity()));
                    bigger.put(buf.flip());
                    buf = bigger;
                }
            }
            byte[] out = new byte[buf.position()];
            buf.flip().get(out);
            return out;
        }
    }

    private static String tooLarge(String size, String what) {
        return "file " + size + ", over the " + (MAX_BYTES >> 20) + " MiB limit for " + what
                + "; check that this is the right file: it should be a few lines of YAML";
    }

    private static String kind(int type) {
        return switch (type) {
            case 0010000 -> "a FIFO (named pipe)";
            case 0020000 -> "a character device";
            case 0040000 -> "a directory";
            case 0060000 -> "a block device";
            case 0140000 -> "a socket";
            default -> "a special file";
        };
    }

    private static String describe(IOException e) {
        return e instanceof NoSuchFileException ? "it does not exist"
                : e instanceof AccessDeniedException ? "permission denied; make it readable by the user qsup runs as"
                : String.valueOf(e.getMessage());
    }
}
