package io.qsup.supervisor;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.UUID;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Persists each VM's {@link VmRecord} as {@code state-dir/supervisor/NAME.json}. Writes are atomic: a temp file in the same
 * folder is written and fsynced, renamed over the old file, and the folder is fsynced, so a crash or power loss leaves
 * either the old or the new record, never a torn one.
 *
 * <p>Thread-safe: every write goes to its own temp file and the rename is atomic; callers serialise writes per VM.
 */
public final class StateStore {
    private static final Logger log = LoggerFactory.getLogger(StateStore.class);
    private static final Pattern SAFE_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");

    private final Path dir;
    /** A record is a few hundred bytes; anything much larger is not one. */
    private static final long MAX_RECORD_BYTES = 1024 * 1024;
    private static final java.time.format.DateTimeFormatter ASIDE_STAMP = java.time.format.DateTimeFormatter
            .ofPattern("yyyyMMdd'T'HHmmss.SSS'Z'").withZone(java.time.ZoneOffset.UTC);

    private final ObjectMapper json = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /** @param stateDir the daemon's {@code state-dir}; records live in its {@code supervisor} subfolder */
    public StateStore(Path stateDir) {
        this.dir = stateDir.resolve("supervisor");
    }

    public Path fileFor(String vm) {
        if (!SAFE_NAME.matcher(vm).matches()) {
            throw new IllegalArgumentException("VM name not usable as a file name: '" + vm + "'");
        }
        return dir.resolve(vm + ".json");
    }

    /**
     * What {@link #read} found.
     *
     * @param record  the stored record; for an unreadable file, a stand-in whose intent is {@code stopped}, so nothing
     *                is started on a guess
     * @param problem null if the file was fine or absent; else what was wrong, where it was moved, and what was assumed
     */
    public record Loaded(VmRecord record, String problem) {
        public boolean recovered() {
            return problem != null;
        }
    }

    /** The stored record of a VM (see {@link #read}). */
    public VmRecord load(String vm) {
        return read(vm).record();
    }

    /**
     * The stored record of a VM, or {@link VmRecord#fresh()} if there is none. A file that is not one valid record (not
     * JSON, {@code null}, trailing data, no {@code intent}, wrong types) is moved aside once, to
     * {@code NAME.json.corrupt-TIME}, and reported; the VM then gets intent {@code stopped} until its adoption tells
     * whether it runs.
     */
    public Loaded read(String vm) {
        Path f = fileFor(vm);
        byte[] bytes;
        try {
            if (Files.size(f) > MAX_RECORD_BYTES) {
                return aside(vm, f, "it is " + Files.size(f) + " bytes, more than a record can be");
            }
            bytes = Files.readAllBytes(f);
        } catch (NoSuchFileException e) {
            return new Loaded(VmRecord.fresh(), null);
        } catch (IOException e) {
            return aside(vm, f, e.toString());
        }
        try {
            JsonNode tree = json.readTree(bytes);
            if (tree == null || !tree.isObject()) {
                return aside(vm, f, "it holds " + (tree == null ? "nothing" : tree.getNodeType().toString()
                        .toLowerCase(java.util.Locale.ROOT)) + ", not a record");
            }
            if (!tree.path("intent").isTextual()) {
                return aside(vm, f, "it has no 'intent'");
            }
            return new Loaded(json.treeToValue(tree, VmRecord.class), null);
        } catch (IOException | IllegalArgumentException e) {
            return aside(vm, f, e.getMessage() == null ? e.toString() : e.getMessage().lines().findFirst().orElse(""));
        }
    }

    private Loaded aside(String vm, Path f, String why) {
        Path to = f.resolveSibling(f.getFileName() + ".corrupt-" + ASIDE_STAMP.format(java.time.Instant.now()));
        String where;
        try {
            Files.move(f, to, StandardCopyOption.ATOMIC_MOVE);
            fsyncDir(dir);
            where = "moved to " + to;
        } catch (IOException e) {
            where = "could not be moved aside (" + e + ")";
        }
        String problem = "state file " + f + " is not a valid record (" + why + "); " + where;
        log.error("VM {}: {}; assuming intent 'stopped' unless its QEMU is found running", vm, problem);
        return new Loaded(VmRecord.fresh().withIntent(Intent.STOPPED), problem);
    }

    /**
     * Removes the temp files of writes that a crash or power loss interrupted ({@code .NAME.json.*.tmp}); the records
     * themselves are whole, old or new. Called once at start-up.
     */
    public void removeTemporaries() {
        if (!Files.isDirectory(dir)) {
            return;
        }
        try (DirectoryStream<Path> tmps = Files.newDirectoryStream(dir, ".*.json.*.tmp")) {
            for (Path t : tmps) {
                Files.deleteIfExists(t);
                log.info("state: removed {} left by an interrupted write", t);
            }
        } catch (IOException e) {
            log.warn("state: cannot clean temp files in {}: {}", dir, e.toString());
        }
    }

    /** Writes the record atomically. */
    public void save(String vm, VmRecord record) throws SupervisorException {
        // An interrupt (qsupd exiting interrupts the VM threads) would close the channels mid-write and lose the
        // record; the write is short, so it runs with the interrupt held back and then restored.
        boolean interrupted = Thread.interrupted();
        try {
            for (int attempt = 1; ; attempt++) {
                try {
                    write(vm, record);
                    return;
                } catch (SupervisorException e) {
                    if (!(e.getCause() instanceof java.nio.channels.ClosedByInterruptException) || attempt == 3) {
                        throw e;
                    }
                    interrupted |= Thread.interrupted();
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void write(String vm, VmRecord record) throws SupervisorException {
        Path f = fileFor(vm);
        Path tmp = dir.resolve("." + vm + ".json." + UUID.randomUUID() + ".tmp");
        try {
            Files.createDirectories(dir);
            byte[] bytes = json.writeValueAsBytes(record);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(bytes);
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
                ch.force(true);
            }
            try {
                Files.move(tmp, f, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                throw new IOException("the file system of " + dir + " cannot rename atomically", e);
            }
            fsyncDir(dir);
        } catch (IOException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // the original error is the one worth reporting
            }
            throw new SupervisorException("VM " + vm + ": cannot write state file " + f + ": "
                    + (e.getMessage() != null ? e.getMessage() : e.toString()) + "; check that state-dir is writable", e);
        }
    }

    /** Removes a VM's record (the VM was removed from the definitions). */
    public void delete(String vm) throws SupervisorException {
        try {
            Files.deleteIfExists(fileFor(vm));
            fsyncDir(dir);
        } catch (IOException e) {
            throw new SupervisorException("VM " + vm + ": cannot delete state file " + fileFor(vm) + ": " + e.getMessage(),
                    e);
        }
    }

    private static void fsyncDir(Path d) throws IOException {
        if (!Files.isDirectory(d)) {
            return;
        }
        try (FileChannel ch = FileChannel.open(d, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }
}
