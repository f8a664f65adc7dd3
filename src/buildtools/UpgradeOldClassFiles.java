import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassFileVersion;
import java.lang.classfile.ClassHierarchyResolver;
import java.lang.classfile.ClassModel;
import java.lang.classfile.ClassTransform;
import java.lang.classfile.CodeTransform;
import java.lang.constant.ClassDesc;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * Build step, run at package time on the shaded jar before the AOT cache is trained (JDK 24+, for its ClassFile API):
 * rewrites every class file older than Java 6 (version 50) as a Java 8 one, with the stack map frames the newer
 * format needs. The JVM never stores a pre-Java-6 class it has linked in an AOT or CDS archive (such a class is
 * verified by the old type-inferring verifier, whose results cannot be saved), so picocli, compiled for Java 5, was
 * loaded from the jar and verified anew on every {@code qsup} run. The bytecode itself is unchanged; every rewritten
 * class is checked by the ClassFile API's verifier, and any failure fails the build.
 *
 * <p>Usage: {@code java src/buildtools/UpgradeOldClassFiles.java JAR}
 */
public final class UpgradeOldClassFiles {
    private static final int OLDEST_KEPT = 50; // Java 6: stack map frames, archivable after linking
    private static final int TARGET = 52; // Java 8

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: java UpgradeOldClassFiles.java JAR");
            System.exit(2);
        }
        Path jar = Path.of(args[0]);
        Path tmp = jar.resolveSibling(jar.getFileName() + ".upgrading");
        int upgraded = 0;
        List<String> failures = new ArrayList<>();
        try (ZipFile in = new ZipFile(jar.toFile())) {
            ClassFile cf = ClassFile.of(ClassFile.ClassHierarchyResolverOption.of(
                    ClassHierarchyResolver.defaultResolver().orElse(
                            ClassHierarchyResolver.ofResourceParsing(desc -> open(in, desc)))));
            try (OutputStream os = Files.newOutputStream(tmp); ZipOutputStream out = new ZipOutputStream(os)) {
                for (ZipEntry e : java.util.Collections.list(in.entries())) {
                    byte[] bytes;
                    try (InputStream is = in.getInputStream(e)) {
                        bytes = is.readAllBytes();
                    }
                    if (e.getName().endsWith(".class") && !e.getName().endsWith("module-info.class")
                            && majorVersion(bytes) < OLDEST_KEPT) {
                        ClassModel cm = cf.parse(bytes);
                        bytes = cf.transformClass(cm,
                                ClassTransform.transformingMethodBodies(CodeTransform.ACCEPT_ALL)
                                        .andThen(ClassTransform.dropping(ClassFileVersion.class::isInstance))
                                        .andThen(ClassTransform.endHandler(b -> b.withVersion(TARGET, 0))));
                        cf.verify(bytes).forEach(v -> failures.add(e.getName() + ": " + v.getMessage()));
                        upgraded++;
                    }
                    ZipEntry copy = new ZipEntry(e.getName());
                    copy.setTime(e.getTime());
                    out.putNextEntry(copy);
                    out.write(bytes);
                    out.closeEntry();
                }
            }
        }
        if (!failures.isEmpty()) {
            Files.delete(tmp);
            failures.forEach(System.err::println);
            System.err.println(jar + ": " + failures.size() + " rewritten class files fail verification; jar left as"
                    + " it was");
            System.exit(1);
        }
        Files.move(tmp, jar, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        System.out.println(jar + ": " + upgraded + " class files older than Java 6 rewritten as Java 8, so that the"
                + " AOT cache can hold them");
    }

    private static int majorVersion(byte[] classFile) {
        return (classFile[6] & 0xff) << 8 | classFile[7] & 0xff;
    }

    private static InputStream open(ZipFile jar, ClassDesc desc) {
        String d = desc.descriptorString(); // Lpkg/Name;
        ZipEntry e = jar.getEntry(d.substring(1, d.length() - 1) + ".class");
        try {
            return e == null ? null : jar.getInputStream(e);
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }
}
