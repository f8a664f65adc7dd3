package io.qsup.qmp.schema;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpException;
import io.qsup.qmp.QmpFraming;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Schemas on disk, one file per {@link SchemaKey}, so that {@code query-qmp-schema} (some 200 KB) is fetched once per
 * QEMU version rather than on every command. A file is used only when the key written inside it is exactly the one
 * asked for: a cache is never trusted across versions. Files are written whole (temp file, fsync, rename), so a
 * reader sees an old file or a new one, never half of one, also with several writers at once.
 */
public final class SchemaCache {
    private static final Logger log = LoggerFactory.getLogger(SchemaCache.class);

    /** Asks the live QEMU for something: {@code query-qmp-schema}, directly or through qsupd. */
    @FunctionalInterface
    public interface Fetch {
        JsonNode call() throws QmpException;
    }

    /**
     * A schema and where it came from.
     *
     * @param fetched true when it was asked from QEMU this time, false when it came from the cache
     */
    public record Obtained(QmpSchema schema, SchemaKey key, boolean fetched) {}

    private final Path dir;

    /** A cache in {@code dir}, created when first written; null for no cache at all. */
    public SchemaCache(Path dir) {
        this.dir = dir;
    }

    public Path dir() {
        return dir;
    }

    /** The file that holds the schema for the key. */
    public Path file(SchemaKey key) {
        return dir.resolve(key.fileName());
    }

    /** The cached schema for exactly this key, if there is a readable one. */
    public Optional<QmpSchema> load(SchemaKey key) {
        if (dir == null) {
            return Optional.empty();
        }
        Path f = file(key);
        try {
            JsonNode doc = QmpFraming.mapper().readTree(Files.readString(f, StandardCharsets.UTF_8));
            if (!key.equals(new SchemaKey(doc.path("version").asText(), doc.path("package").asText(),
                    doc.path("arch").asText()))) {
                log.debug("schema cache {} is for another QEMU than {}; not used", f, key);
                return Optional.empty();
            }
            return Optional.of(QmpSchema.parse(doc.get("schema")));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException | SchemaException | RuntimeException e) {
            log.warn("schema cache {} is unreadable ({}); fetching the schema again", f, e.getMessage());
            return Optional.empty();
        }
    }

    /** Writes the schema for the key; a failure to write is logged and otherwise ignored: the cache is an aid. */
    public void store(SchemaKey key, QmpSchema schema) {
        if (dir == null) {
            return;
        }
        ObjectNode doc = JsonNodeFactory.instance.objectNode();
        doc.put("version", key.version()).put("package", key.pkg()).put("arch", key.arch());
        doc.set("schema", schema.raw());
        Path f = file(key);
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, ".qmp-schema-", ".tmp");
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ch.write(java.nio.ByteBuffer.wrap(QmpFraming.toJson(doc).getBytes(StandardCharsets.UTF_8)));
                ch.force(true);
            }
            Files.move(tmp, f, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            log.debug("schema of {} cached in {}", key, f);
        } catch (IOException e) {
            log.warn("cannot cache the QMP schema in {}: {}", dir, e.getMessage());
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // left for the next writer's directory listing to show
                }
            }
        }
    }

    /**
     * Notes that a target (a socket, a VM: any name the caller chooses) last served the schema of this key, for
     * {@link #lastSeen}. A failure to write is logged and otherwise ignored.
     */
    public void remember(String target, SchemaKey key) {
        if (dir == null) {
            return;
        }
        Path f = targetFile(target);
        try {
            Files.createDirectories(f.getParent());
            Path tmp = Files.createTempFile(f.getParent(), ".target-", ".tmp");
            Files.writeString(tmp, key.version() + "\n" + key.pkg() + "\n" + key.arch() + "\n");
            Files.move(tmp, f, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            log.debug("cannot note the schema of {} in {}: {}", target, f, e.getMessage());
        }
    }

    /**
     * The schema the target served when last asked, without asking it again: for completion, which must answer at
     * once and may be a version behind. Never use it to check what is sent.
     */
    public Optional<QmpSchema> lastSeen(String target) {
        if (dir == null) {
            return Optional.empty();
        }
        try {
            java.util.List<String> lines = Files.readAllLines(targetFile(target), StandardCharsets.UTF_8);
            if (lines.size() < 3) {
                return Optional.empty();
            }
            return load(new SchemaKey(lines.get(0), lines.get(1), lines.get(2)));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private Path targetFile(String target) {
        try {
            byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(target.getBytes(StandardCharsets.UTF_8));
            return dir.resolve("targets").resolve(java.util.HexFormat.of().formatHex(d, 0, 12));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }

    /** The cached schema for the key, else the one {@code fetch} gets from QEMU, which is then cached. */
    public Obtained obtain(SchemaKey key, Fetch fetch) throws QmpException {
        Optional<QmpSchema> cached = load(key);
        if (cached.isPresent()) {
            return new Obtained(cached.get(), key, false);
        }
        QmpSchema schema = QmpSchema.parse(fetch.call());
        store(key, schema);
        return new Obtained(schema, key, true);
    }
}
