<?xml version="1.0" encoding="utf-8"?>
<!-- For the check on Linux only (installer/test-packages.sh): msitools' wixl
     builds MSI files from WiX v3 sources but knows no WiX extensions, so this
     copies the source without the firewall extension's elements. The test
     checks those elements separately; the release MSI is built by WiX itself. -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:fire="http://schemas.microsoft.com/wix/FirewallExtension">
  <xsl:template match="@*|node()">
    <xsl:copy><xsl:apply-templates select="@*|node()"/></xsl:copy>
  </xsl:template>
  <xsl:template match="fire:*"/>
</xsl:stylesheet>
