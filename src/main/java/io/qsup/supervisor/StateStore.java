package io.qsup.supervisor;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.channels.FileChannel;
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
    private final ObjectMapper json = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
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
     * The stored record of a VM, or {@link VmRecord#fresh()} if there is none. A record that cannot be read is moved
     * aside to {@code NAME.json.corrupt} and reported, and the VM starts over with a fresh record.
     */
    public VmRecord load(String vm) {
        Path f = fileFor(vm);
        try {
            return json.readValue(Files.readAllBytes(f), VmRecord.class);
        } catch (NoSuchFileException e) {
            return VmRecord.fresh();
        } catch (IOException e) {
            Path aside = f.resolveSibling(f.getFileName() + ".corrupt");
            log.error("VM {}: state file {} is unreadable ({}); moved to {} and starting with a fresh record", vm, f,
                    e.getMessage(), aside);
            try {
                Files.move(f, aside, StandardCopyOption.REPLACE_EXISTING);
            } catch (IOException moveFailed) {
                log.error("VM {}: cannot move {} aside: {}", vm, f, moveFailed.toString());
            }
            return VmRecord.fresh();
        }
    }

    /** Writes the record atomically. */
    public void save(String vm, VmRecord record) throws SupervisorException {
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
            throw new SupervisorException("VM " + vm + ": cannot write state file " + f + ": " + e.getMessage()
                    + "; check that state-dir is writable", e);
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
