package io.qsup.supervisor;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.util.ByteArrayBuilder;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
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

    /**
     * Records are read and written with jackson-core's streaming API, not databind: the first {@code ObjectMapper} sets
     * up databind's date formats and with them the JDK's calendar and locale data, about 80 ms of every qsupd start.
     */
    private static final JsonFactory JSON = JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

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
            return new Loaded(decode(bytes), null);
        } catch (IOException e) {
            return aside(vm, f, e.getMessage() == null ? e.toString() : e.getMessage().lines().findFirst().orElse(""));
        }
    }

    /**
     * The one record in {@code bytes}: a JSON object with a textual {@code intent}; the other fields may be missing
     * (false, 0, empty or null) but never of another type, nor null where the field is a flag or a count. Unknown
     * fields are skipped, so that a record written by a newer qsupd still reads.
     */
    static VmRecord decode(byte[] bytes) throws IOException {
        try (JsonParser p = JSON.createParser(bytes)) {
            JsonToken first = p.nextToken();
            if (first != JsonToken.START_OBJECT) {
                throw new IOException("it holds " + (first == null ? "nothing" : value(p, first)) + ", not a record");
            }
            Intent intent = null;
            boolean failed = false;
            boolean hadGoodStart = false;
            boolean stopPending = false;
            boolean restartInProgress = false;
            int restarts = 0;
            int consecutive = 0;
            List<Long> recentStarts = List.of();
            String lastExitCause = null;
            String lastExitDetail = null;
            Long lastExitAt = null;
            String downByPolicyBoot = null;
            for (JsonToken t = p.nextToken(); t != JsonToken.END_OBJECT; t = p.nextToken()) {
                String field = p.currentName();
                JsonToken v = p.nextToken();
                switch (field) {
                    case "intent" -> intent = intent(p, v);
                    case "failed" -> failed = flag(p, v);
                    case "restarts" -> restarts = count(p, v);
                    case "consecutive" -> consecutive = count(p, v);
                    case "recentStartsMillis" -> recentStarts = millisList(p, v);
                    case "hadGoodStart" -> hadGoodStart = flag(p, v);
                    case "lastExitCause" -> lastExitCause = text(p, v);
                    case "lastExitDetail" -> lastExitDetail = text(p, v);
                    case "lastExitAtMillis" -> lastExitAt = v == JsonToken.VALUE_NULL ? null : millis(p, v);
                    case "stopPending" -> stopPending = flag(p, v);
                    case "restartInProgress" -> restartInProgress = flag(p, v);
                    case "downByPolicyBoot" -> downByPolicyBoot = text(p, v);
                    default -> p.skipChildren();
                }
            }
            if (p.nextToken() != null) {
                throw new IOException("data follows the record at line " + p.currentLocation().getLineNr());
            }
            if (intent == null) {
                throw new IOException("it has no 'intent'");
            }
            return new VmRecord(intent, failed, restarts, consecutive, recentStarts, hadGoodStart, lastExitCause,
                    lastExitDetail, lastExitAt, stopPending, restartInProgress, downByPolicyBoot);
        }
    }

    private static Intent intent(JsonParser p, JsonToken v) throws IOException {
        String word = v == JsonToken.VALUE_STRING ? p.getText() : null;
        for (Intent i : Intent.values()) {
            if (i.name().equals(word)) {
                return i;
            }
        }
        throw new IOException("'intent' is " + (word == null ? value(p, v) : "'" + word + "'")
                + ", not one of " + java.util.Arrays.toString(Intent.values()));
    }

    private static boolean flag(JsonParser p, JsonToken v) throws IOException {
        if (v != JsonToken.VALUE_TRUE && v != JsonToken.VALUE_FALSE) {
            throw wrong(p, v, "true or false");
        }
        return v == JsonToken.VALUE_TRUE;
    }

    private static int count(JsonParser p, JsonToken v) throws IOException {
        if (v != JsonToken.VALUE_NUMBER_INT || p.getNumberType() != JsonParser.NumberType.INT || p.getIntValue() < 0) {
            throw wrong(p, v, "a count");
        }
        return p.getIntValue();
    }

    private static long millis(JsonParser p, JsonToken v) throws IOException {
        if (v != JsonToken.VALUE_NUMBER_INT || p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
            throw wrong(p, v, "epoch milliseconds");
        }
        return p.getLongValue();
    }

    private static List<Long> millisList(JsonParser p, JsonToken v) throws IOException {
        if (v == JsonToken.VALUE_NULL) {
            return List.of();
        }
        if (v != JsonToken.START_ARRAY) {
            throw wrong(p, v, "a list of epoch milliseconds");
        }
        List<Long> out = new ArrayList<>();
        for (JsonToken t = p.nextToken(); t != JsonToken.END_ARRAY; t = p.nextToken()) {
            out.add(millis(p, t));
        }
        return out;
    }

    private static String text(JsonParser p, JsonToken v) throws IOException {
        if (v == JsonToken.VALUE_NULL) {
            return null;
        }
        if (v != JsonToken.VALUE_STRING) {
            throw wrong(p, v, "a string or null");
        }
        return p.getText();
    }

    private static IOException wrong(JsonParser p, JsonToken v, String expected) throws IOException {
        return new IOException("'" + p.currentName() + "' is " + value(p, v) + ", not " + expected + " (line "
                + p.currentLocation().getLineNr() + ")");
    }

    /** What the parser is at, for a message: "a list", "null", "the number 1.5", "a string yes". */
    private static String value(JsonParser p, JsonToken v) throws IOException {
        return v.isScalarValue() && v != JsonToken.VALUE_NULL ? describe(v) + " " + p.getText() : describe(v);
    }

    private static String describe(JsonToken t) {
        return switch (t) {
            case START_OBJECT -> "an object";
            case START_ARRAY -> "a list";
            case VALUE_STRING -> "a string";
            case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> "the number";
            case VALUE_TRUE, VALUE_FALSE -> "the flag";
            case VALUE_NULL -> "null";
            default -> t.name();
        };
    }

    /** The record as indented JSON, its fields in the order of its components (the layout of every earlier qsupd). */
    static byte[] encode(VmRecord r) throws IOException {
        try (ByteArrayBuilder out = new ByteArrayBuilder()) {
            try (JsonGenerator g = JSON.createGenerator(out)) {
                g.setPrettyPrinter(new DefaultPrettyPrinter());
                g.writeStartObject();
                g.writeStringField("intent", r.intent().name());
                g.writeBooleanField("failed", r.failed());
                g.writeNumberField("restarts", r.restarts());
                g.writeNumberField("consecutive", r.consecutive());
                g.writeArrayFieldStart("recentStartsMillis");
                for (long m : r.recentStartsMillis()) {
                    g.writeNumber(m);
                }
                g.writeEndArray();
                g.writeBooleanField("hadGoodStart", r.hadGoodStart());
                g.writeStringField("lastExitCause", r.lastExitCause());
                g.writeStringField("lastExitDetail", r.lastExitDetail());
                g.writeFieldName("lastExitAtMillis");
                if (r.lastExitAtMillis() == null) {
                    g.writeNull();
                } else {
                    g.writeNumber(r.lastExitAtMillis());
                }
                g.writeBooleanField("stopPending", r.stopPending());
                g.writeBooleanField("restartInProgress", r.restartInProgress());
                g.writeStringField("downByPolicyBoot", r.downByPolicyBoot());
                g.writeEndObject();
            }
            return out.toByteArray();
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
            byte[] bytes = encode(record);
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
