package io.qsup.qmp.schema;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * What a cached schema is valid for: one QEMU version, package string and target architecture. Two binaries of one
 * version built for different targets (x86_64, aarch64) offer different commands, hence the architecture.
 *
 * @param version {@code major.minor.micro}
 * @param pkg     QEMU's package string, for example {@code Debian 1:7.2+dfsg-7}; may be empty
 * @param arch    from {@code query-target}; empty when the server did not say
 */
public record SchemaKey(String version, String pkg, String arch) {

    /**
     * From a version object as in the greeting and {@code query-version}:
     * {@code {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": "..."}}.
     */
    public static SchemaKey of(JsonNode versionInfo, String arch) {
        JsonNode q = versionInfo.path("qemu");
        String version = q.path("major").asInt() + "." + q.path("minor").asInt() + "." + q.path("micro").asInt();
        return new SchemaKey(version, versionInfo.path("package").asText(""), arch == null ? "" : arch);
    }

    /** A file name that differs for every key: readable version, then a digest of all three parts. */
    public String fileName() {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256")
                    .digest((version + "\n" + pkg + "\n" + arch).getBytes(StandardCharsets.UTF_8));
            return "qmp-schema-" + version.replaceAll("[^0-9.]", "_") + "-"
                    + HexFormat.of().formatHex(digest, 0, 8) + ".json";
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }

    @Override
    public String toString() {
        return "QEMU " + version + (pkg.isEmpty() ? "" : " (" + pkg + ")") + (arch.isEmpty() ? "" : " " + arch);
    }
}
